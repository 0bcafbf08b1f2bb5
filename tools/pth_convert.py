#!/usr/bin/env python
"""Convert an MMSegmentation teacher checkpoint into SCTNet teacher weights.

    python tools/pth_convert.py IN.pth OUT.pth [--force]

IN: a teacher checkpoint trained with MMSegmentation 0.x or 1.x (a dict with
``state_dict``, or a bare state dict): a SegFormer, or another segmentor
whose decode head SIAM can split (a UPerNet with a ConvNeXt or Swin
backbone, ...; docs/siam.md). OUT: the official teacher layout (a
bare state dict with ``teacher_backbone.*`` and ``teacher_head.*``; training
state, ``auxiliary_head.*`` and anything else are dropped), as the official
``tools/pth_convert.py`` writes it, ready for
``model.siam_head.teacher_checkpoint``. Any other kind of checkpoint (an
SCTNet one, an ImageNet backbone, another model) is refused, saying what it
is and what to pass. IN is read with ``weights_only=True`` and never
written; OUT is replaced only with ``--force``.
Logic: :func:`mmseg_sctnet.pretrain.teacher.convert_teacher`.
"""
import argparse
import sys

from mmseg_sctnet.pretrain.teacher import convert_teacher
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input', help='MMSegmentation teacher checkpoint '
                   '(SegFormer, UPerNet, ...)')
    p.add_argument('output', help='where to write the teacher weights')
    p.add_argument(
        '--force',
        action='store_true',
        help='replace an existing OUT (never IN itself)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    convert_teacher(args.input, args.output, force=args.force)
    return 0


if __name__ == '__main__':
    sys.exit(main())
