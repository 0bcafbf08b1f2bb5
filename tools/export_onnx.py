#!/usr/bin/env python
"""Export the deployed SCTNet student to ONNX, check it in onnxruntime,
optionally quantize it to int8.

    python tools/export_onnx.py CONFIG CKPT --shape H W
        [--dynamic] [--fp16 | --int8 [--calib-num N] [--calib-method M]
        [--float-parts P,...]] [--no-resize] [--opset 17] [--out FILE]

CKPT is a training checkpoint (teacher tensors ignored) or a deploy
checkpoint from ``tools/deploy.py``. Only the deployed student is exported:
``input`` ``[N, 3, H, W]`` (normalised image, as the config's
data_preprocessor produces it) -> ``logits`` ``[N, classes, H, W]``
(``--no-resize``: the head's 1/8). The file is compared with the eager
PyTorch model in onnxruntime (max relative error; fails above 1e-4 fp32,
2e-2 ``--fp16``). ``--int8`` quantizes it statically (QDQ, per-channel
int8 weights; onnxruntime's quantization tools), calibrated on
``--calib-num`` images of the config's train split read through its test
pipeline. Logic: :func:`mmseg_sctnet.deploy.onnx_export.export_onnx`;
see docs/deploy.md.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.deploy import onnx_export, quantize


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Export the deployed SCTNet to ONNX (checked with '
        'onnxruntime; optionally int8)')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='training or deploy checkpoint')
    p.add_argument('--shape', type=int, nargs=2, required=True,
                   metavar=('H', 'W'), help='input height and width (also '
                   'the calibration size of --int8)')
    p.add_argument('--dynamic', action='store_true', help='dynamic batch, '
                   'height and width')
    p.add_argument('--fp16', action='store_true', help='export in half '
                   'precision (for TensorRT prefer fp32 ONNX + trtexec '
                   '--fp16)')
    p.add_argument('--int8', action='store_true', help='static int8 '
                   'quantization (QDQ, per-channel weights), calibrated on '
                   'the train split')
    p.add_argument('--calib-num', type=int, default=32, help='calibration '
                   'images for --int8 (default 32)')
    p.add_argument('--calib-method', default='minmax',
                   choices=sorted(quantize.CALIB_METHODS),
                   help='activation range calibration (default minmax)')
    p.add_argument('--float-parts',
                   default=','.join(quantize.DEFAULT_FLOAT_PARTS),
                   help='comma-separated parts kept in float with --int8 '
                   f'(any of {",".join(quantize.FLOAT_PARTS)}, or "none"; '
                   'default: %(default)s)')
    p.add_argument('--no-resize', action='store_true', help='output logits '
                   'at 1/8 instead of the input size')
    p.add_argument('--opset', type=int, default=17)
    p.add_argument('--out', help='output file (default work_dirs/onnx/'
                   '<config>_<H>x<W>[_dynamic][_fp16|_int8].onnx); never '
                   'overwritten')
    p.add_argument('--no-check', action='store_true', help='skip the '
                   'onnxruntime check against PyTorch')
    args = p.parse_args(argv)
    parts = args.float_parts.strip()
    args.float_parts = [] if parts in ('', 'none') else [
        s.strip() for s in parts.split(',') if s.strip()]
    return args


@exit_on_user_error
def main(argv=None) -> dict:
    return onnx_export.export_onnx(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
