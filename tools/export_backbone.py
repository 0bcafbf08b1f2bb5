#!/usr/bin/env python
"""Export the SCTNet backbone of an ImageNet pretraining checkpoint.

    python tools/export_backbone.py CKPT OUT [--config CONFIG]
                                    [--weights {auto,ema,raw}] [--force]

CKPT: a checkpoint tools/train.py wrote for a configs/pretrain/ config.
OUT: ``{'state_dict': <backbone tensors, bare names>, 'meta': ...}``, the
file a segmentation config loads with ``model.backbone.init_cfg=dict(
type='Pretrained', checkpoint=OUT)`` (e.g. pretrained/SCT-S_Pretrain.pth).
The EMA weights are exported when the run kept them (EMAHook), unless
``--weights raw``. Every backbone tensor must be in CKPT with the right
shape (of the backbone in --config, or of the SCTNet whose widths the
tensors show); otherwise nothing is written and the missing ones are named.
CKPT is read with ``weights_only=True`` and never written; OUT is never
CKPT and is replaced only with ``--force``.
Logic: :func:`mmseg_sctnet.pretrain.backbone.export_backbone`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.pretrain import export_backbone


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('checkpoint', help='pretraining checkpoint (epoch_N.pth)')
    p.add_argument('output', help='backbone file to write')
    p.add_argument(
        '--config',
        help='pretraining or segmentation config whose model.backbone the '
        'weights must fit exactly (default: inferred from the tensors)')
    p.add_argument(
        '--weights',
        choices=['auto', 'ema', 'raw'],
        default='auto',
        help='EMA or raw weights (auto: EMA when present)')
    p.add_argument(
        '--force',
        action='store_true',
        help='replace an existing OUTPUT (never CHECKPOINT itself)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    return export_backbone(
        args.checkpoint,
        args.output,
        config=args.config,
        weights=args.weights,
        force=args.force)


if __name__ == '__main__':
    main()
