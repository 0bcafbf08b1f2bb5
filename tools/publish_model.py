#!/usr/bin/env python
"""Turn a training checkpoint into a release file named by its checksum.

    python tools/publish_model.py IN.pth OUT.pth [--student-only]

Writes ``OUT-<sha8>.pth`` where ``<sha8>`` are the first 8 hex digits of the
SHA-256 of the written file (the MMSegmentation/torch.hub convention), and
prints the full SHA-256. Every checkpoint this project loads has its SHA-256
logged, and a file whose name carries a prefix that its content does not
match is reported -- so a release can be verified (the original release
shipped the wrong model for months, its issue #42).

Kept: the student (``backbone.*``, ``decode_head.*``), the auxiliary head
(``auxiliary_head.0.*``) and the SIAM projections
(``auxiliary_head.1.{feature_transforms,convstage3,convstage4}.*``) -- the
layout of the official release, so the file both deploys (``init_model``,
``tools/test.py``; the training-only tensors are skipped there) and
fine-tunes (``load_from``; the teacher comes from ``teacher_checkpoint``).
``--student-only`` keeps ``backbone.*`` and ``decode_head.*`` only.
Dropped: the frozen teacher (``*teacher_*``, the bulk of a SIAM
checkpoint), the optimizer, message hub, schedulers and RNG states, and
run-specific meta (hook messages); the dataset meta (classes, palette), the
config text and the iteration are kept.

IN is read with ``weights_only=True`` and never written. An existing file
is never overwritten. Logic: :func:`mmseg_sctnet.apis.publish.publish_model`.
"""
import argparse
import sys

from mmseg_sctnet.apis.publish import publish_model
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input', help='training checkpoint (iter_N.pth)')
    p.add_argument(
        'output', help='release name; the file written is OUT-<sha8>.pth')
    p.add_argument(
        '--student-only',
        action='store_true',
        help='keep only backbone.* and decode_head.* (the deployed model)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    publish_model(args.input, args.output, student_only=args.student_only)
    return 0


if __name__ == '__main__':
    sys.exit(main())
