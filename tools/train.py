#!/usr/bin/env python
"""Train a segmentor (SCTNet with SIAM by default) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_train.sh CONFIG GPUS [...]
"""
import argparse
import logging
import os
import os.path as osp

import _bootstrap  # noqa: F401

import mmseg_sctnet  # noqa: F401  (registers SCTNet, applies compat)
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a segmentor')
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='where logs and checkpoints go')
    p.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from CKPT, or from the latest checkpoint in the work '
        'dir when no path is given')
    p.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.use_siam=False')
    p.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def replace_norm(cfg, old='SyncBN', new='BN'):
    """Replace ``type=old`` norm configs everywhere in ``cfg`` (in place)."""
    n = 0
    if isinstance(cfg, dict):
        if cfg.get('type') == old and 'requires_grad' in cfg:
            cfg['type'] = new
            n += 1
        for v in cfg.values():
            n += replace_norm(v, old, new)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            n += replace_norm(v, old, new)
    return n


def build_config(args) -> Config:
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        else:
            assert wrapper == 'OptimWrapper', (
                '--amp only works with OptimWrapper, got ' + wrapper)
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: checkpoint to resume from not found: '
                             f'{args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    import torch
    if args.launcher != 'none' and not torch.cuda.is_available():
        # SyncBN cannot run on CPU; gloo is the CPU backend
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        if replace_norm(cfg.model):
            print_log('CPU distributed training: SyncBN replaced by BN.',
                      logger='current')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
