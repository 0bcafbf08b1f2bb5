#!/usr/bin/env python
"""Evaluate a checkpoint: per-class IoU table and mIoU.

    python tools/test.py CONFIG CHECKPOINT [--eval mIoU] [--work-dir DIR]
                         [--show-dir DIR] [--out DIR] [--metrics-json FILE]
                         [--tta] [--cfg-options k=v ...]
    python tools/test.py CONFIG CHECKPOINT --format-only --out DIR
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [...]

* ``--eval mIoU`` (the official README's spelling) selects the metrics of
  the config's IoUMetric: any of mIoU, mDice, mFscore.
* ``--show-dir DIR`` writes ``DIR/<image>.png`` for every test image:
  input | ground truth | prediction, in the dataset palette, with a legend.
* ``--out DIR`` writes the predicted label maps (PNG, dataset label ids).
* ``--metrics-json FILE`` writes the summary and per-class metrics as JSON.
* ``--format-only --out DIR`` (a 19-class Cityscapes config) evaluates
  nothing: the images of ``leftImg8bit/test`` (no labels needed) are
  predicted and written to DIR as the Cityscapes test server takes them,
  ``<city>_<seq>_<frame>_leftImg8bit.png`` holding label ids.

The model is built for inference (no teacher, no pretrained weights are
read): only CHECKPOINT is loaded. A ``.onnx`` file (``tools/export_onnx.py``,
fp32/fp16/int8) is evaluated with onnxruntime through the same dataset,
pipeline and metric (``mmseg_sctnet.deploy.ort_segmentor``). The work is
``mmseg_sctnet.apis.test.test``.
"""
import argparse
import os

from mmengine.config import DictAction

from mmseg_sctnet.apis.test import SUPPORTED_EVAL, test
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Evaluate a segmentor')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file (.pth) or ONNX file '
                   '(.onnx)')
    p.add_argument('--work-dir', help='where the evaluation log goes')
    p.add_argument(
        '--out', help='write the predicted label maps (PNG) to this folder')
    p.add_argument(
        '--show-dir',
        help='write input | ground truth | prediction PNGs to this folder')
    p.add_argument(
        '--metrics-json', help='write mIoU and the per-class IoU/Acc here')
    p.add_argument(
        '--eval',
        nargs='+',
        default=None,
        help="metrics, as in the official README ('--eval mIoU'); any of "
        + ', '.join(SUPPORTED_EVAL))
    p.add_argument(
        '--format-only',
        action='store_true',
        help='Cityscapes test server: predict leftImg8bit/test (no labels '
        'needed) and write label-id PNGs named after the images to --out, '
        'without evaluating')
    p.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation (the config's tta_pipeline)")
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings; keys must exist in the config '
        '(+key=value adds a new one)')
    p.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


@exit_on_user_error
def main(argv=None, on_runner=None):
    args = parse_args(argv)
    return test(args.config, args.checkpoint, args.launcher, on_runner,
                work_dir=args.work_dir, out=args.out, show_dir=args.show_dir,
                metrics_json=args.metrics_json, eval_metrics=args.eval,
                tta=args.tta, cfg_options=args.cfg_options,
                format_only=args.format_only)


if __name__ == '__main__':
    main()
