#!/usr/bin/env python
"""Exact FLOPs and parameters of a segmentor's inference network.

    python tools/get_flops.py CONFIG [--shape H W] [--deploy] [--json OUT]

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (no
hand-written counter): every convolution, the conv attention's functional
``F.conv2d`` calls included, and every matrix product, as 2 x MACs.
BatchNorm, activations, softmax, pooling and interpolation (the final
upsampling too) are not counted: with this rule the official figures come
out exactly (SCTNet-B 239.0 GFLOPs at 1024x2048, SCTNet-S 16.0 at
512x1024). Counting runs on the meta device (no arithmetic; under a
second). Parameters: those of the modules an inference forward calls
(no auxiliary head, no teacher).

``--shape`` defaults to the config's speed-test size for the official
SCTNet configs (e.g. 1024x2048 for Seg100, 512x512 for ADE20K); other
configs need ``--shape``. One number means a square input.
"""
import argparse
import json
import os.path as osp
import sys

import _bootstrap  # noqa: F401

import mmseg_sctnet  # noqa: F401

#: official configs -> (H, W) of the official speed/FLOPs tables
DEFAULT_SHAPES = {
    'sctnet-s_seg50_8x2_160k_cityscapes': (512, 1024),
    'sctnet-s_seg75_8x2_160k_cityscapes': (768, 1536),
    'sctnet-b_seg50_8x2_160k_cityscapes': (512, 1024),
    'sctnet-b_seg75_8x2_160k_cityscapes': (768, 1536),
    'sctnet-b_seg100_8x2_160k_cityscapes': (1024, 2048),
    'sctnet-s_8x4_160k_ade': (512, 512),
    'sctnet-b_8x4_160k_ade': (512, 512),
    'sctnet_b_4x4_160k': (640, 640),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='FLOPs (2 x MACs, FlopCounterMode) and parameters')
    p.add_argument('config', help='config file')
    p.add_argument(
        '--shape', type=int, nargs='+', metavar='N',
        help='input H W (or one number for H = W)')
    p.add_argument('--deploy', action='store_true', help='count the '
                   'deployed graph (switch_to_deploy); same convolutions')
    p.add_argument('--json', help='also write the figures to this file')
    args = p.parse_args(argv)
    if args.shape is not None:
        if len(args.shape) == 1:
            args.shape = args.shape * 2
        if len(args.shape) != 2 or min(args.shape) < 1:
            p.error(f'--shape expects H W (or one number), got {args.shape}')
    return args


def resolve_shape(config: str, shape):
    if shape:
        return tuple(shape)
    stem = osp.splitext(osp.basename(config))[0]
    if stem in DEFAULT_SHAPES:
        return DEFAULT_SHAPES[stem]
    raise SystemExit(f'error: no default input size for {config}; pass '
                     '--shape H W (e.g. --shape 1024 2048)')


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmseg_sctnet.deploy import build_inference_model, switch_to_deploy
    from mmseg_sctnet.deploy.analysis import count_flops, inference_params
    try:
        model = build_inference_model(args.config, init_weights=False)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    shape = resolve_shape(args.config, args.shape)
    params = inference_params(model)
    if args.deploy:
        switch_to_deploy(model)
    res = count_flops(model, shape, by_module=True)
    line = '=' * 60
    print(line)
    print(f'Config:      {args.config}')
    print(f'Input shape: 1x3x{shape[0]}x{shape[1]}'
          f'{"  (deployed graph)" if args.deploy else ""}')
    print(f'Params:      {params:,} ({params / 1e6:.2f} M, inference '
          'modules only)')
    print(f'GFLOPs:      {res["gflops"]:.1f}  ({res["flops"]:,} FLOPs = 2 x '
          'MACs)')
    for name, v in res.get('by_module', {}).items():
        print(f'  {name:12s} {v / 1e9:10.2f}')
    for op, v in res['by_operator'].items():
        print(f'  [{op}] {v / 1e9:.2f}')
    print('Counted: every convolution (functional ones included) and matrix '
          'product;\nnot counted: BN, activations, softmax, pooling, '
          'interpolation.')
    print(line)
    out = dict(config=args.config, shape=list(shape), params=params,
               deploy=args.deploy, **res)
    if args.json:
        if osp.exists(args.json):
            raise SystemExit(f'error: {args.json} exists; choose another '
                             'path (files are never overwritten)')
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)
        print(f'wrote {args.json}')
    return out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
