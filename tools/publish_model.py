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

IN is read with ``weights_only=True``. An existing file is never
overwritten.
"""
import argparse
import hashlib
import io
import os
import os.path as osp
import sys
from collections import OrderedDict

import _bootstrap  # noqa: F401

KEEP_META = ('dataset_meta', 'CLASSES', 'PALETTE', 'cfg', 'config', 'iter',
             'epoch', 'seed', 'experiment_name', 'time', 'mmengine_version',
             'mmcv_version', 'mmseg_version')
PROJECTIONS = ('feature_transforms.', 'convstage3.', 'convstage4.')


def is_teacher_key(key: str) -> bool:
    return key.startswith('teacher_') or '.teacher_' in key


def select_state(state, student_only=False):
    """``(kept, dropped_groups)`` of a segmentor state dict."""
    kept, dropped = OrderedDict(), OrderedDict()

    def drop(group, k):
        dropped[group] = dropped.get(group, 0) + 1

    for k, v in state.items():
        if is_teacher_key(k):
            drop('teacher', k)
        elif k.startswith(('backbone.', 'decode_head.')):
            kept[k] = v
        elif student_only:
            drop('training-only heads', k)
        elif k.startswith('auxiliary_head.'):
            kept[k] = v
        else:
            kept[k] = v  # e.g. a neck: part of the deployed network
    return kept, dropped


def published_name(out: str, sha: str) -> str:
    stem = out[:-4] if out.endswith('.pth') else out
    return f'{stem}-{sha[:8]}.pth'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input', help='training checkpoint (iter_N.pth)')
    p.add_argument(
        'output', help='release name; the file written is OUT-<sha8>.pth')
    p.add_argument(
        '--student-only',
        action='store_true',
        help='keep only backbone.* and decode_head.* (the deployed model)')
    args = p.parse_args(argv)

    import torch

    import mmseg_sctnet  # noqa: F401
    from mmseg_sctnet.compat import exit_on_user_error, safe_torch_load
    from mmseg_sctnet.compat.atomic_io import _tmp_path, _fsync_dir
    from mmseg_sctnet.compat.errors import CheckpointMismatchError, UserError

    @exit_on_user_error
    def run():
        ckpt = safe_torch_load(args.input)
        if not isinstance(ckpt, dict):
            raise CheckpointMismatchError(
                f'{args.input} holds a {type(ckpt).__name__}, not a '
                'checkpoint dict.')
        state = ckpt.get('state_dict', ckpt)
        state = OrderedDict((k[7:] if k.startswith('module.') else k, v)
                            for k, v in state.items()
                            if isinstance(v, torch.Tensor))
        if 'decode_head.conv_seg.weight' not in state:
            raise CheckpointMismatchError(
                f'{args.input} is not a segmentor checkpoint (no '
                'decode_head.conv_seg.weight among its '
                f'{len(state)} tensors); publish the iter_N.pth that '
                'tools/train.py wrote.')
        kept, dropped = select_state(state, args.student_only)
        meta = {
            k: v
            for k, v in (ckpt.get('meta') or {}).items() if k in KEEP_META
        }
        source_sha = mmseg_sctnet.compat.file_sha256(args.input)
        meta['published'] = dict(
            source=osp.basename(args.input),
            source_sha256=source_sha,
            student_only=bool(args.student_only),
            dropped=dict(dropped))
        top_dropped = [
            k for k in ckpt
            if k not in ('state_dict',
                         'meta') and k in ('optimizer', 'message_hub',
                                           'param_schedulers', 'rng_state')
        ]
        buf = io.BytesIO()
        torch.save(dict(meta=meta, state_dict=kept), buf)
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        final = published_name(args.output, sha)
        if osp.exists(final):
            if mmseg_sctnet.compat.file_sha256(final) == sha:
                print(f'{final} already exists with the same content '
                      f'(sha256 {sha}); nothing written.')
                return 0
            raise UserError(
                f'{final} exists with other content; refusing to overwrite '
                'it. Choose another OUT name or move that file away.')
        directory = osp.dirname(osp.abspath(final))
        os.makedirs(directory, exist_ok=True)
        tmp = _tmp_path(final)
        with open(tmp, 'xb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, final)  # atomic and never replaces an existing file
        except FileExistsError:
            raise UserError(f'{final} appeared while writing; refusing to '
                            'overwrite it.') from None
        finally:
            os.unlink(tmp)
        _fsync_dir(directory)
        # read back what was written, the way every loader reads it
        back = safe_torch_load(final, log_checksum=False)
        assert list(back['state_dict']) == list(kept)
        groups = OrderedDict()
        for k in kept:
            g = k.split('.')[0]
            if k.startswith('auxiliary_head.1.'):
                g = 'SIAM projections'
            elif k.startswith('auxiliary_head.'):
                g = 'auxiliary head'
            groups[g] = groups.get(g, 0) + 1
        n_params = sum(v.numel() for v in kept.values())
        print(f'kept     {len(kept)} tensors, {n_params:,} values: ' +
              ', '.join(f'{g} {n}' for g, n in groups.items()))
        print('dropped  ' +
              ', '.join([f'{g} ({n} tensors)'
                         for g, n in dropped.items()] + top_dropped)
              if dropped or top_dropped else 'dropped  nothing')
        print(f'source   {args.input} (sha256 {source_sha})')
        print(f'wrote    {final} ({len(data) / 2**20:.1f} MiB)')
        print(f'sha256   {sha}')
        print(f'verify   sha256sum {final}')
        return 0

    return run()


if __name__ == '__main__':
    sys.exit(main())
