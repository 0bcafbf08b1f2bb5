#!/usr/bin/env python
"""Cost of the ImageNet pretraining recipe, estimated from CPU figures.

    python speed/pretrain_cost.py [--batch 16] [--rounds 3] [--json OUT]

Measures on this machine: training-step throughput (fp32, 224x224, AdamW,
images per second of CPU time) of the SCTNet-S/B classifiers of
configs/pretrain/ and of torchvision's ResNet-50, interleaved; the
images/s one core prepares with the configs' training pipeline; exact
FLOPs. Then brackets the GPU throughput between ResNet-50's published A100
training throughput and that figure times the measured SCTNet/ResNet-50
ratio, caps it by the data loaders (--cores-per-gpu) and prints GPU-hours
for --epochs (docs/pretrain.md). The logic is
:func:`mmseg_sctnet.benchmark.pretrain_cost.estimate_pretraining_cost`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import pretrain_cost


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--batch', type=int, default=16, help='images per step')
    p.add_argument('--steps', type=int, default=3, help='steps per round')
    p.add_argument('--rounds', type=int, default=3, help='interleaved rounds')
    p.add_argument(
        '--pipeline-images',
        type=int,
        default=64,
        help='JPEGs pushed through the training pipeline')
    p.add_argument(
        '--cores-per-gpu',
        type=int,
        default=8,
        help='data-loader cores per GPU of the node to estimate for')
    p.add_argument('--epochs', type=int, default=300)
    p.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads (1: CPU-time figures unaffected by idle '
        'OpenMP threads)')
    p.add_argument('--json', help='write the figures to this JSON file')
    p.add_argument(
        '--overwrite',
        action='store_true',
        help='allow --json to replace an existing file')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    return pretrain_cost.estimate_pretraining_cost(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
