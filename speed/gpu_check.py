#!/usr/bin/env python
"""A ready check of a CUDA machine, in one command (docs/speed.md).

    bash tools/gpu_check.sh [options]    # with the repository's Python
    python speed/gpu_check.py [--out-dir work_dirs/gpu_check]
        [--types T,...] [--train-iters 20]
        [--skip speed,train,dist,tensorrt] [--timeout 900]

Runs the official speed protocol (fp32 and --fp16, SCTNet-S and -B at their
official sizes), SCTNet-S training with SIAM at the official crop and batch
(fp32 and --amp), two-process training with SyncBN when two GPUs are
visible, and ONNX -> TensorRT fp16 when trtexec or the tensorrt package is
installed; prints one markdown table of what ran, the figures and what was
skipped and why. Refused with one ``error:`` line without a visible CUDA
device. Logic: :func:`mmseg_sctnet.benchmark.gpu_check.run_gpu_check`.
"""
import argparse

from mmseg_sctnet.benchmark import gpu_check
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Check a CUDA machine: speed, training (fp32, --amp, '
        '2 GPUs with SyncBN), ONNX -> TensorRT fp16; one table')
    p.add_argument('--out-dir', default='work_dirs/gpu_check',
                   help='a new <date>-<time> folder here gets the logs, '
                   'JSON files and the table (default %(default)s)')
    p.add_argument('--types', help='comma-separated speed/torch_speed.py '
                   '--type names (default: '
                   f'{",".join(gpu_check.SPEED_TYPES)})')
    p.add_argument('--train-iters', type=int, default=20,
                   help='iterations of each training check (default 20)')
    p.add_argument('--skip', help='comma-separated steps to leave out: '
                   f'{",".join(gpu_check.STEPS)}')
    p.add_argument('--timeout', type=float, default=900.0,
                   help='seconds allowed to each command (default 900)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    res = gpu_check.run_gpu_check(
        out_dir=args.out_dir,
        types=args.types,
        train_iters=args.train_iters,
        skip=args.skip,
        timeout=args.timeout)
    if any(r.status == gpu_check.FAILED for r in res['results']):
        raise SystemExit(1)
    return res


if __name__ == '__main__':
    main()
