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
configs need ``--shape``. One number means a square input; sides below 32
are refused. ``--json`` never overwrites a file.
Logic: :func:`mmseg_sctnet.benchmark.flops.get_flops`.
"""
import argparse
import sys

from mmseg_sctnet.benchmark.flops import get_flops
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='FLOPs (2 x MACs, FlopCounterMode) and parameters')
    p.add_argument('config', help='config file')
    p.add_argument(
        '--shape', type=int, nargs='+', metavar='N',
        help='input H W (or one number for H = W)')
    p.add_argument('--deploy', action='store_true', help='count the '
                   'deployed graph (switch_to_deploy); same convolutions')
    p.add_argument('--json', help='also write the figures to this new file')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    args = parse_args(argv)
    return get_flops(args.config, args.shape, args.deploy, args.json)


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
