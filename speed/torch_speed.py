#!/usr/bin/env python
"""Latency / FPS of an SCTNet model under the official (PIDNet) protocol.

    python speed/torch_speed.py --type sctnet-b-seg100
    cd speed; python torch_speed.py --type sctnet-b-seg100   # official usage

Types (config, input H x W): sctnet-s-seg50 / sctnet-b-seg50 (512x1024),
sctnet-s-seg75 / sctnet-b-seg75 (768x1536), sctnet-b-seg100 (1024x2048),
sctnet-s-ade / sctnet-b-ade (512x512), sctnet-b-coco (640x640).

Batch 1 (``--batch``), random input, random weights (``--checkpoint`` to time
a trained file, which changes nothing but is reassuring), 10 warm-up runs,
iterations adapted to about 6 s, the final bilinear upsampling to the input
size included, ``cudnn.benchmark`` on GPU. Options: ``--device cpu|cuda``,
``--fp16`` (GPU, the official switch), ``--dtype fp32|bf16|fp16`` (bf16 on
CPUs with AVX512-BF16/AMX and on GPUs, fp16 on GPUs; ``--dtype-mode
autocast|weights``), ``--channels-last``, ``--compile`` (torch.compile with Inductor freezing),
``--deploy`` (mmseg_sctnet.models.switch_to_deploy: folded BNs, lean
attention, channels-last unless ``--no-channels-last``), ``--shape H W``,
``--config`` (any SCTNet or MMSegmentation config), ``--json OUT``.
The timing logic is :func:`mmseg_sctnet.benchmark.speed.torch_speed`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import harness, speed
from mmseg_sctnet.deploy.dtype import DTYPES, MODES


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='SCTNet speed measurement (official protocol)')
    p.add_argument(
        '--type',
        default='sctnet-b-seg100',
        choices=sorted(harness.MODEL_TYPES),
        help='model and test size (default sctnet-b-seg100)')
    p.add_argument(
        '--config', help='time this config instead of --type\'s (needs '
        '--shape unless it is one of the --type configs)')
    p.add_argument('--checkpoint', help='load these weights (eager or '
                   'deploy checkpoint); random weights otherwise')
    p.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input height and width (default: the type\'s test size)')
    p.add_argument('--batch', type=int, default=1, help='batch size (1)')
    p.add_argument('--device', help='cpu or cuda (default: cuda if present)')
    p.add_argument('--fp16', action='store_true', help='half precision '
                   'weights and input (GPU only; the official switch)')
    p.add_argument('--dtype', choices=list(DTYPES), default='fp32',
                   help='compute precision: bf16 needs AVX512-BF16/AMX on '
                   'CPU (refused otherwise) or a bf16 GPU; fp16 a GPU')
    p.add_argument('--dtype-mode', choices=MODES, default='autocast',
                   help='bf16/fp16 through torch.autocast (default) or '
                   'converted weights')
    p.add_argument(
        '--channels-last',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='channels-last memory format (default: on with --deploy, off '
        'otherwise)')
    p.add_argument('--compile', action='store_true', help='torch.compile '
                   'the timed module with Inductor freezing (compiled during '
                   'warm-up)')
    p.add_argument('--deploy', action='store_true', help='time the deployed '
                   'graph (mmseg_sctnet.models.switch_to_deploy)')
    p.add_argument('--no-resize', action='store_true', help='leave out the '
                   'final upsampling to the input size (protocol: included)')
    p.add_argument('--warmup', type=int, default=10, help='warm-up runs (10)')
    p.add_argument('--min-time', type=float, default=6.0, help='target '
                   'seconds of the timed loop (6)')
    p.add_argument('--calib-time', type=float, default=1.0, help='seconds '
                   'of the calibration loop (1)')
    p.add_argument('--iters', type=int, help='fixed number of timed runs '
                   '(skips calibration)')
    p.add_argument('--threads', type=int, help='CPU threads (torch default '
                   'otherwise)')
    p.add_argument('--malloc', choices=harness.MALLOC_MODES,
                   default='glibc', help='glibc: the C allocator as is '
                   '(default); cached: freed memory kept for reuse (no '
                   'page faults on every forward; see docs/deploy.md)')
    p.add_argument('--json', help='write the result to this JSON file')
    p.add_argument('--overwrite', action='store_true', help='allow --json to '
                   'replace an existing file')
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error('--batch must be >= 1')
    if args.iters is not None and args.iters < 1:
        p.error('--iters must be >= 1')
    return args


@exit_on_user_error
def main(argv=None) -> dict:
    return speed.torch_speed(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
