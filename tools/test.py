#!/usr/bin/env python
"""Evaluate a checkpoint: per-class IoU table and mIoU.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
                         [--show-dir DIR] [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [...]

``--eval mIoU`` (the official README's spelling) is accepted: mIoU is what
the configs' evaluator computes.
"""
import argparse
import os
import os.path as osp

import _bootstrap  # noqa: F401

import mmseg_sctnet  # noqa: F401
from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Evaluate a segmentor')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='where the evaluation log goes')
    p.add_argument(
        '--out', help='write the predicted label maps (PNG) to this folder')
    p.add_argument(
        '--show-dir', help='write prediction overlays to this folder')
    p.add_argument(
        '--eval',
        nargs='+',
        default=None,
        help="accepted for the official README's commands; only mIoU-style "
        'metrics (mIoU, mDice, mFscore) are supported')
    p.add_argument('--tta', action='store_true', help='test-time augmentation')
    p.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
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
    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint)):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} file not found: {path}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.eval:
        bad = [m for m in args.eval if m not in ('mIoU', 'mDice', 'mFscore')]
        if bad:
            raise SystemExit(f'error: unsupported --eval metric(s) {bad}; '
                             'use mIoU, mDice or mFscore')
        cfg.test_evaluator['iou_metrics'] = list(args.eval)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    # inference model: no teacher, no pretrained-backbone loading
    cfg.model.train_cfg = None
    if isinstance(cfg.model.get('backbone', {}).get('init_cfg'), dict):
        cfg.model.backbone.init_cfg = None
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    if args.show_dir:
        hook = cfg.default_hooks.visualization
        hook['draw'] = True
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = args.show_dir
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if 'mIoU' in metrics:
        print(f"mIoU: {metrics['mIoU']:.2f}")
    return metrics


if __name__ == '__main__':
    main()
