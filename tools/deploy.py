#!/usr/bin/env python
"""Write the deployed (BN-folded, inference-only) form of a checkpoint.

    python tools/deploy.py IN_CKPT OUT_CKPT --config CONFIG
        [--no-fold-prenorm] [--no-channels-last] [--check-shape H W]

IN_CKPT is a training checkpoint (MMEngine, or an official one converted
by ``tools/pth_convert.py``; teacher tensors in it are ignored). The
deployed model (``mmseg_sctnet.models.switch_to_deploy``: training-only
heads removed, BatchNorms folded exactly, lean attention, channels-last)
is checked against the eager model on a random input (maximum relative
error printed; above 1e-4 nothing is written) and saved to OUT_CKPT with
the deploy options in ``meta``. ``mmseg_sctnet.deploy.load_inference_model``,
``tools/export_onnx.py`` and ``speed/torch_speed.py --checkpoint`` load it.
OUT_CKPT is never overwritten, and never one of the inputs.
Logic: :func:`mmseg_sctnet.apis.deploy_checkpoint.write_deploy_checkpoint`.
"""
import argparse
import sys

from mmseg_sctnet.apis.deploy_checkpoint import write_deploy_checkpoint
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Fold a trained SCTNet into its deploy form')
    p.add_argument('in_ckpt', help='trained checkpoint (.pth)')
    p.add_argument('out_ckpt', help='deploy checkpoint to write (must not '
                   'exist)')
    p.add_argument('--config', required=True, help='the config IN_CKPT was '
                   'trained with')
    p.add_argument('--no-fold-prenorm', action='store_true', help='keep the '
                   'CFBlock pre-norms as BatchNorm layers')
    p.add_argument('--no-channels-last', action='store_true', help='store '
                   'weights in NCHW (channels-last is faster on CPU and on '
                   'tensor-core GPUs)')
    p.add_argument('--check-shape', type=int, nargs=2, default=(256, 512),
                   metavar=('H', 'W'), help='input size of the equality '
                   'check (default 256 512, each >= 32)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> float:
    args = parse_args(argv)
    return write_deploy_checkpoint(
        args.in_ckpt,
        args.out_ckpt,
        args.config,
        fold_prenorm=not args.no_fold_prenorm,
        channels_last=not args.no_channels_last,
        check_shape=args.check_shape)


if __name__ == '__main__':
    main()
    sys.exit(0)
