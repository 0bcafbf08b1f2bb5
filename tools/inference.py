#!/usr/bin/env python
"""Segment an image, a folder of images or a video.

    python tools/inference.py INPUT CONFIG CHECKPOINT --out DIR
        [--device cpu|cuda:0] [--deploy] [--dtype fp32|bf16|fp16]
        [--opacity 0.5] [--batch-size 1] [--frame-labels] [--force]
        [--cfg-options k=v ...]

CHECKPOINT is a PyTorch checkpoint (``.pth``) or an ONNX file (a name
ending in ``.onnx``, from ``tools/export_onnx.py``), which onnxruntime
runs on the CPU with the same outputs. ``--dtype bf16|fp16`` runs a
``.pth`` under ``torch.autocast`` (bf16: CPUs with AVX512-BF16/AMX-BF16
and GPUs; fp16: GPUs); refused, not emulated, elsewhere.

Writes ``overlay/<name>.png`` (prediction over the image, legend below)
and ``labels/<name>.png`` (one class index per pixel) for images and
folders, ``<name>_overlay.mp4`` (and ``<name>_labels/``) for a video.
Unreadable images are skipped and listed (exit status 1). The work is
``mmseg_sctnet.apis.inference.run_inference`` (``MMSegInferencer`` subclasses);
docs/getting_started.md section 6 describes every option.
"""
import argparse
import sys

from mmengine.config import DictAction

from mmseg_sctnet.apis.inference import report_skipped, run_inference
from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.deploy.dtype import DTYPES


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Segment an image, a folder of images or a video and '
        'write colour overlays (with a legend) and raw label PNGs.')
    p.add_argument('input', help='image file, folder of images, or video')
    p.add_argument('config', help='config the checkpoint was trained with')
    p.add_argument(
        'checkpoint',
        help='checkpoint file (.pth), or an ONNX file (.onnx, run by '
        'onnxruntime on the CPU)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument(
        '--device',
        help='cpu, cuda or cuda:N (default: cuda:0 when available, else cpu)')
    p.add_argument(
        '--deploy',
        action='store_true',
        help='run the deployment form of the model (BatchNorms folded)')
    p.add_argument(
        '--dtype',
        choices=list(DTYPES),
        help='compute precision of a .pth (torch.autocast): bf16 needs '
        'AVX512-BF16/AMX-BF16 on a CPU or a bf16 GPU, fp16 a GPU; refused '
        'otherwise and with an .onnx file (default fp32)')
    p.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the colour overlay, in (0, 1] (default 0.5)')
    p.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images (or video frames) per forward pass; images of '
        'different sizes are never batched together (default 1)')
    p.add_argument(
        '--frame-labels',
        action='store_true',
        help="video input: also write each frame's label PNG")
    p.add_argument(
        '--force',
        action='store_true',
        help='overwrite output files left by an earlier run')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_pipeline.1.scale=[1024,512]'
        ' (keys must exist in the config; +key=value adds a new one)')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    report = run_inference(
        args.input, args.config, args.checkpoint, args.out, args.device,
        args.deploy, args.opacity, args.batch_size, args.frame_labels,
        args.force, args.cfg_options, args.dtype)
    return report_skipped(report)


if __name__ == '__main__':
    sys.exit(main())
