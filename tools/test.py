#!/usr/bin/env python
"""Evaluate a checkpoint: per-class IoU table and mIoU.

    python tools/test.py CONFIG CHECKPOINT [--eval mIoU] [--work-dir DIR]
                         [--show-dir DIR] [--out DIR] [--metrics-json FILE]
                         [--tta] [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [...]

* ``--eval mIoU`` (the official README's spelling) selects the metrics of
  the config's IoUMetric: any of mIoU, mDice, mFscore.
* ``--show-dir DIR`` writes ``DIR/<image>.png`` for every test image:
  input | ground truth | prediction, in the dataset palette, with a legend.
* ``--out DIR`` writes the predicted label maps (PNG, dataset label ids).
* ``--metrics-json FILE`` writes the summary and per-class metrics as JSON.

The model is built for inference (no teacher, no pretrained weights are
read): only CHECKPOINT is loaded. A ``.onnx`` file (``tools/export_onnx.py``,
fp32/fp16/int8) is evaluated with onnxruntime through the same dataset,
pipeline and metric (``mmseg_sctnet.deploy.ort_segmentor``).
"""
import argparse
import json
import os
import os.path as osp

import _bootstrap  # noqa: F401

import numpy as np
from _common import (adapt_to_cpu_distributed, check_file,
                     finish_distributed, init_cpu_distributed,
                     make_run_names_unique)
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmseg_sctnet.compat import exit_on_user_error
from mmseg_sctnet.deploy.ort_segmentor import is_onnx_path, onnx_model_config

SUPPORTED_EVAL = ('mIoU', 'mDice', 'mFscore')


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
    p.add_argument('--tta', action='store_true', help='test-time augmentation')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    p.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    check_file('config file', args.config)
    check_file('checkpoint file', args.checkpoint)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.eval:
        bad = [m for m in args.eval if m not in SUPPORTED_EVAL]
        if bad:
            raise SystemExit(f'error: unsupported --eval metric(s) {bad}; '
                             f'use {", ".join(SUPPORTED_EVAL)}')
        cfg.test_evaluator['iou_metrics'] = list(args.eval)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    if is_onnx_path(args.checkpoint):
        # an exported model: onnxruntime behind the same loop and metric
        onnx_model_config(cfg, args.checkpoint)
    else:
        # inference model: no teacher, no pretrained-backbone loading
        cfg.model.train_cfg = None
        backbone = cfg.model.get('backbone', {})
        if isinstance(backbone.get('init_cfg'), dict):
            cfg.model.backbone.init_cfg = None
        cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.out:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    if args.show_dir:
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='SegVisualizationHook'))
        hook['draw'] = True
        hook['interval'] = 1
        vis = dict(cfg.get('visualizer') or {})
        vis.pop('type', None)
        vis.pop('name', None)
        vis.update(type='SideBySideSegVisualizer', out_dir=args.show_dir)
        cfg.visualizer = vis
    if args.tta:
        if 'tta_pipeline' not in cfg:
            raise SystemExit(f'error: --tta needs tta_pipeline in {args.config}'
                             ' (see MMSegmentation\'s dataset configs)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    adapt_to_cpu_distributed(cfg, args.launcher)
    make_run_names_unique(cfg)
    return cfg


def _capture_per_class(metric, store: dict) -> None:
    """Keep the per-class values an ``IoUMetric`` computes (it only logs
    them as a table)."""
    compute = metric.compute_metrics

    def compute_metrics(results):
        out = compute(results)
        if results and not getattr(metric, 'format_only', False):
            areas = [sum(x) for x in zip(*results)]
            ret = metric.total_area_to_metrics(*areas, metric.metrics,
                                               metric.nan_to_num, metric.beta)
            classes = metric.dataset_meta['classes']
            ret.pop('aAcc', None)
            store.update({
                c: {
                    k: (None if np.isnan(float(v[i])) else
                        round(float(v[i]) * 100, 2))
                    for k, v in ret.items()
                }
                for i, c in enumerate(classes)
            })
        return out

    metric.compute_metrics = compute_metrics


def run_test(cfg: Config, on_runner=None) -> dict:
    """Run the test loop; returns ``dict(metrics=..., per_class=...)``.

    ``on_runner(runner)`` is called once the runner is built.
    """
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    if on_runner is not None:
        on_runner(runner)
    per_class = {}
    for metric in runner.test_loop.evaluator.metrics:
        if hasattr(metric, 'total_area_to_metrics'):
            _capture_per_class(metric, per_class)
    metrics = runner.test()
    return dict(
        metrics={k: round(float(v), 2)
                 for k, v in metrics.items()},
        per_class=per_class,
        rank=runner.rank)


@exit_on_user_error
def main(argv=None, on_runner=None):
    args = parse_args(argv)
    cfg = build_config(args)
    from mmseg_sctnet.datasets.checker import check_data_paths
    check_data_paths(cfg, splits=('test', ))
    init_cpu_distributed(cfg, args.launcher)
    result = run_test(cfg, on_runner)
    finish_distributed()
    if result['rank'] != 0:
        return result
    metrics = result['metrics']
    result.update(config=args.config, checkpoint=args.checkpoint)
    if args.metrics_json:
        os.makedirs(osp.dirname(osp.abspath(args.metrics_json)), exist_ok=True)
        with open(args.metrics_json, 'w') as f:
            json.dump(result, f, indent=2)
        print_log(f'metrics written to {args.metrics_json}', logger='current')
    if args.show_dir:
        print_log(f'input | ground truth | prediction PNGs in {args.show_dir}',
                  logger='current')
    if args.out:
        print_log(f'predicted label maps in {args.out}', logger='current')
    if 'mIoU' in metrics:
        print(f"mIoU: {metrics['mIoU']:.2f}")
    return result


if __name__ == '__main__':
    main()
