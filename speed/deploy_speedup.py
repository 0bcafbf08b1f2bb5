#!/usr/bin/env python
"""Deploy mode against eager mode, measured interleaved.

    python speed/deploy_speedup.py --type sctnet-b-seg50 --device cpu

Builds one random-weight SCTNet, derives the variants from it (same
weights) and times them in alternating rounds (A B C A B C ...), so that a
change in background load hits every variant alike; each round runs
``--iters`` forwards per variant (final upsampling included, batch 1).
Reports, per variant, the median and the minimum of the per-round mean
latencies and the speed-up of the median against eager mode, and checks
that every variant's output equals eager mode's (max relative error).

Variants: ``eager``, ``eager-cl`` (channels-last only), ``deploy``
(switch_to_deploy defaults: folded BNs + channels-last),
``deploy-nchw`` (channels_last=False), ``deploy-bn`` (pre-norms kept as
BatchNorm, fold_prenorm=False), and, on request only (compiling takes about
a minute on 2 CPU cores), ``deploy-compile`` (``torch.compile`` with
freezing of the deployed model; compiled before the rounds start).
The logic is :func:`mmseg_sctnet.benchmark.speed.deploy_speedup`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import harness, speed


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--type', default='sctnet-b-seg50',
                   choices=sorted(harness.MODEL_TYPES))
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--device', help='cpu or cuda (default: cuda if present)')
    p.add_argument('--variants',
                   default=','.join(speed.DEFAULT_DEPLOY_VARIANTS),
                   help='comma-separated subset of '
                   f'{",".join(speed.DEPLOY_VARIANTS)}')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=1,
                   help='forwards per variant and round')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int)
    p.add_argument('--malloc', choices=harness.MALLOC_MODES,
                   default='glibc', help='glibc: the C allocator as is '
                   '(default); cached: freed memory kept for reuse (no '
                   'page faults on every forward; see docs/deploy.md)')
    p.add_argument('--json', help='write the result to this JSON file')
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    return speed.deploy_speedup(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
