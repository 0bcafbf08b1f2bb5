#!/usr/bin/env python
"""Speed of SCTNet by backend in one process: eager, deploy, deploy +
torch.compile, onnxruntime fp32 and int8, bf16 and bf16 + torch.compile
(where supported).

    python speed/compare_backends.py --type sctnet-b-seg50 --device cpu
    python speed/compare_backends.py --type sctnet-b-seg50 --device cpu \
        --backends eager,deploy,ort-fp32,ort-int8,bf16 --rounds 10 \
        --json work_dirs/speed/backends.json

Same random-weight model, same input, interleaved rounds (median and
minimum per backend), batch 1, final upsampling included. Writes
``table.txt``, ``chart.png`` and ``results.json`` to ``--out-dir``
(default ``work_dirs/speed/backends_<type>_<H>x<W>_<device>``; ``--json``
moves the JSON), whose ``backends`` maps each backend to ``latency_ms``,
``speedup`` and its agreement with eager; backends this machine cannot run
are listed under ``skipped`` with the reason. The CPU model and flags are
printed and saved. Logic: :func:`mmseg_sctnet.benchmark.backends.
compare_backends`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import backends, harness


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--type', default='sctnet-b-seg50',
                   choices=sorted(harness.MODEL_TYPES))
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='input size (default: the type\'s test size)')
    p.add_argument('--device', default='cpu', help='cpu (default) or cuda')
    p.add_argument('--backends', default=','.join(backends.DEFAULT_BACKENDS),
                   help='comma-separated subset of '
                   f'{",".join(backends.BACKENDS)} (eager is always timed)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=1,
                   help='forwards per backend and round')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--calib-num', type=int, default=4, help='random '
                   'calibration inputs of ort-int8 (latency only)')
    p.add_argument('--threads', type=int, help='torch and onnxruntime '
                   'threads (torch default otherwise)')
    p.add_argument('--malloc', choices=harness.MALLOC_MODES,
                   default='glibc', help='glibc: the C allocator as is '
                   '(default); cached: freed memory kept for reuse (no '
                   'page faults on every forward; see docs/deploy.md)')
    p.add_argument('--out-dir')
    p.add_argument('--json', help='write the JSON here instead')
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    return backends.compare_backends(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
