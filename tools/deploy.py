#!/usr/bin/env python
"""Write the deployed (BN-folded, inference-only) form of a checkpoint.

    python tools/deploy.py IN_CKPT OUT_CKPT --config CONFIG
        [--no-fold-prenorm] [--no-channels-last] [--check-shape H W]

IN_CKPT is a training checkpoint (MMEngine, or an official one converted
by ``tools/pth_convert.py``; teacher tensors in it are ignored). The
deployed model (``mmseg_sctnet.deploy.switch_to_deploy``: training-only
heads removed, BatchNorms folded exactly, lean attention, channels-last)
is checked against the eager model on a random input (maximum relative
error printed; above 1e-4 nothing is written) and saved to OUT_CKPT with
the deploy options in ``meta``. ``mmseg_sctnet.deploy.load_inference_model``,
``tools/export_onnx.py`` and ``speed/torch_speed.py --checkpoint`` load it.
OUT_CKPT is never overwritten.
"""
import argparse
import copy
import hashlib
import os.path as osp
import sys

import _bootstrap  # noqa: F401

import mmseg_sctnet  # noqa: F401

TOLERANCE = 1e-4


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
                   'check (default 256 512)')
    return p.parse_args(argv)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None) -> float:
    args = parse_args(argv)
    import torch
    from mmseg_sctnet.deploy import (SegmentorWithResize,
                                     build_inference_model,
                                     is_deploy_checkpoint,
                                     load_student_weights, read_checkpoint,
                                     save_deploy_checkpoint, switch_to_deploy)
    for what, path in (('config', args.config), ('checkpoint', args.in_ckpt)):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} file not found: {path}')
    if osp.exists(args.out_ckpt):
        raise SystemExit(f'error: {args.out_ckpt} exists; choose another '
                         'output path (existing files are never overwritten)')
    if osp.abspath(args.out_ckpt) == osp.abspath(args.in_ckpt):
        raise SystemExit('error: OUT_CKPT must differ from IN_CKPT')
    out_dir = osp.dirname(osp.abspath(args.out_ckpt))
    if not osp.isdir(out_dir):
        raise SystemExit(f'error: output folder {out_dir} does not exist')
    try:
        ckpt = read_checkpoint(args.in_ckpt)
    except Exception as e:  # unreadable / unsafe file: say which and why
        raise SystemExit(f'error: cannot read {args.in_ckpt}: {e}')
    if is_deploy_checkpoint(ckpt):
        raise SystemExit(f'error: {args.in_ckpt} is already a deploy '
                         'checkpoint')
    eager = build_inference_model(args.config, init_weights=False)
    try:
        load_student_weights(eager, ckpt, source=args.in_ckpt)
    except (KeyError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    deployed = switch_to_deploy(
        copy.deepcopy(eager),
        fold_prenorm=not args.no_fold_prenorm,
        channels_last=not args.no_channels_last)
    x = torch.randn(1, 3, *args.check_shape,
                    generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = SegmentorWithResize(eager)(x)
        out = SegmentorWithResize(deployed)(x)
    err = ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
    from mmseg_sctnet.deploy.analysis import inference_params
    n_before = inference_params(eager)
    print(f'deploy check at 1x3x{args.check_shape[0]}x{args.check_shape[1]}:'
          f' max relative error {err:.2e} (tolerance {TOLERANCE:g})')
    if not err < TOLERANCE:
        raise SystemExit('error: the deployed model does not match the eager '
                         'model; nothing written')
    meta = dict(
        config=osp.abspath(args.config),
        source_checkpoint=osp.abspath(args.in_ckpt),
        source_sha256=_sha256(args.in_ckpt),
        check_max_rel_error=err)
    save_deploy_checkpoint(deployed, args.out_ckpt, meta=meta)
    n_bn = sum(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for m in eager.modules())
    n_bn_left = sum(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for m in deployed.modules())
    print(f'BatchNorm layers: {n_bn} -> {n_bn_left} (the rest are followed '
          'by a ReLU before their conv and stay)')
    print(f'parameters of the eager inference model: {n_before:,}')
    print(f'wrote {args.out_ckpt}')
    return err


if __name__ == '__main__':
    main()
    sys.exit(0)
