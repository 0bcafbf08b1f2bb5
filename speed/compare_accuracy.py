#!/usr/bin/env python
"""mIoU of a trained model by backend (PyTorch fp32, deploy, bf16,
onnxruntime fp32 and int8 variants), per class, side by side.

    python speed/compare_accuracy.py CONFIG CKPT [--shape H W]
        [--int8 NAME=METHOD:PARTS ...] [--calib-num 32] [--out-dir DIR]

Exports the fp32 and int8 ONNX files (as tools/export_onnx.py; files
already in --out-dir are reused), then scores every backend on the
config's test split with its dataset, test pipeline and IoUMetric, as
tools/test.py does; writes ``accuracy.md`` (per-class IoU table, mIoU,
delta against the .pth, pixel agreement) and ``accuracy.json``.
Logic: :func:`mmseg_sctnet.benchmark.accuracy.compare_accuracy`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import accuracy


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='export/calibration size (default: the test '
                   'pipeline\'s size of the first test image)')
    p.add_argument('--int8', nargs='+', default=(), metavar='NAME=M:PARTS',
                   help='int8 variants, e.g. default=minmax:attention-norm,'
                   'gelu,classifier,final-resize all=minmax:none')
    p.add_argument('--calib-num', type=int, default=32)
    p.add_argument('--dtypes', default='bf16,bf16-weights',
                   help='torch reduced-precision backends, comma-separated '
                   f'from {",".join(accuracy.DTYPE_BACKENDS)} ("" for none)')
    p.add_argument('--max-images', type=int, help='evaluate only the '
                   'first N test images')
    p.add_argument('--out-dir')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    args.dtypes = [d for d in args.dtypes.split(',') if d]
    return args


@exit_on_user_error
def main(argv=None) -> dict:
    return accuracy.compare_accuracy(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
