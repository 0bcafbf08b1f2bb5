#!/usr/bin/env python
"""Convert an MMSegmentation SegFormer checkpoint into SCTNet teacher weights.

    python tools/pth_convert.py IN.pth OUT.pth

IN: a SegFormer checkpoint trained with MMSegmentation 0.x or 1.x (a dict with
``state_dict``, or a bare state dict). OUT: the official teacher layout (a
bare state dict with ``teacher_backbone.*`` and ``teacher_head.*``; training
state, ``auxiliary_head.*`` and anything else are dropped), as the official
``tools/pth_convert.py`` writes it, ready for
``model.siam_head.teacher_checkpoint``. The input is read with
``weights_only=True``; OUT is never overwritten unless ``--force``.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict

import _bootstrap  # noqa: F401


def convert(state):
    """Map a SegFormer state dict to teacher keys.

    Returns ``(converted, dropped)``.
    """
    out, dropped = OrderedDict(), []
    for k, v in state.items():
        if k.startswith('backbone.'):
            out['teacher_backbone.' + k[len('backbone.'):]] = v
        elif k.startswith('decode_head.'):
            out['teacher_head.' + k[len('decode_head.'):]] = v
        elif k.startswith(('teacher_backbone.', 'teacher_head.')):
            out[k] = v  # already converted
        else:
            dropped.append(k)
    return out, dropped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input', help='MMSegmentation SegFormer checkpoint')
    p.add_argument('output', help='where to write the teacher weights')
    p.add_argument('--force', action='store_true', help='overwrite OUT')
    args = p.parse_args(argv)

    from mmseg_sctnet.compat import safe_torch_load
    from mmseg_sctnet.models.utils import extract_state_dict
    import torch

    if not osp.isfile(args.input):
        sys.exit(f'error: input checkpoint not found: {args.input}')
    if osp.exists(args.output) and not args.force:
        sys.exit(f'error: {args.output} exists; pass --force to overwrite')
    state = extract_state_dict(safe_torch_load(args.input))
    converted, dropped = convert(state)
    n_bb = sum(k.startswith('teacher_backbone.') for k in converted)
    n_hd = sum(k.startswith('teacher_head.') for k in converted)
    if n_bb == 0 or n_hd == 0:
        sys.exit(f'error: {args.input} does not look like an MMSegmentation '
                 f'SegFormer checkpoint: found {n_bb} backbone.* and {n_hd} '
                 'decode_head.* tensors (need both).')
    if not any('layers.0.0.projection' in k for k in converted):
        print('warning: no MixVisionTransformer patch embedding '
              '(backbone.layers.0.0.projection) found; is this a SegFormer?')
    print(f'mapped backbone.*    -> teacher_backbone.*  {n_bb} tensors')
    print(f'mapped decode_head.* -> teacher_head.*      {n_hd} tensors')
    groups = OrderedDict()
    for k in dropped:
        groups.setdefault(k.split('.')[0], []).append(k)
    for g, keys in groups.items():
        print(f'dropped {g}.*  {len(keys)} tensors')
    cls = converted.get('teacher_head.conv_seg.weight')
    if cls is not None:
        print(f'teacher classifier: {cls.shape[0]} classes')
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    tmp = args.output + '.tmp'
    torch.save(converted, tmp)
    os.replace(tmp, args.output)
    print(f'saved {args.output}')


if __name__ == '__main__':
    main()
