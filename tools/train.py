#!/usr/bin/env python
"""Train a segmentor (SCTNet with SIAM by default) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--allow-dataset-warnings]
                          [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_train.sh CONFIG GPUS [...]        # one node, GPUS procs
    NNODES=2 NODE_RANK=0 MASTER_ADDR=host bash tools/dist_train.sh ...
    bash tools/slurm_train.sh PARTITION JOB CONFIG [...]

The plugin is imported here, so neither PYTHONPATH nor mim is needed.
Without CUDA a distributed run uses gloo and BN (see tools/_common.py);
a single-process run reverts SyncBN to BN by itself (MMEngine).
"""
import argparse
import logging
import os
import os.path as osp

import _bootstrap  # noqa: F401

from _common import (adapt_to_cpu_distributed, check_file, cuda_available,
                     ensure_reliability_hooks, finish_distributed,
                     init_cpu_distributed, make_run_names_unique)
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmseg_sctnet.compat import exit_on_user_error
from mmseg_sctnet.engine import resolve_auto_resume


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a segmentor')
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='where logs and checkpoints go')
    p.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        metavar='CKPT',
        help='resume training (model, optimizer, scheduler, iteration) from '
        'CKPT, or from the latest checkpoint in the work dir when no path '
        'is given')
    p.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a CUDA GPU)')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.use_siam=False '
        'train_dataloader.batch_size=4 '
        "'train_dataloader.dataset.pipeline.3.crop_size=(256,256)'")
    p.add_argument(
        '--allow-dataset-warnings',
        action='store_true',
        help='continue when the dataset check before training only finds '
        'warnings (sets cfg.dataset_check.allow_warnings=True)')
    p.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (dist_train.sh / slurm_train.sh set it)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    """The run's config: the file, ``--cfg-options`` and the flags."""
    check_file('config file', args.config)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.allow_dataset_warnings:
        cfg.dataset_check = dict(allow_warnings=True)
    if args.amp:
        if not cuda_available():
            raise SystemExit(
                'error: --amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper '
                'does not run on CPU); drop --amp.')
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise SystemExit(f'error: --amp works with optim_wrapper.type='
                             f'OptimWrapper, the config has {wrapper!r}.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
        # the newest complete checkpoint in work_dir (a missing, empty or
        # dangling last_checkpoint falls back to the newest iter_*.pth)
        resolve_auto_resume(cfg)
    elif args.resume is not None:
        check_file('checkpoint to resume from', args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    adapt_to_cpu_distributed(cfg, args.launcher)
    ensure_reliability_hooks(cfg)
    make_run_names_unique(cfg)
    return cfg


def last_checkpoint(work_dir: str):
    """Path recorded in ``work_dir/last_checkpoint`` (MMEngine), or None."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        return f.read().strip() or None


def build_runner(argv=None):
    """Parse ``argv`` and build the MMEngine runner (not started)."""
    args = parse_args(argv)
    cfg = build_config(args)
    from mmengine.runner import Runner

    from mmseg_sctnet.datasets.checker import check_data_paths
    # a missing data folder fails here with its path, not inside MMEngine
    check_data_paths(cfg, splits=('train', 'val'))
    init_cpu_distributed(cfg, args.launcher)
    return Runner.from_cfg(cfg)


@exit_on_user_error
def main(argv=None):
    runner = build_runner(argv)
    runner.train()
    ckpt = last_checkpoint(runner.work_dir)
    if ckpt is not None and runner.rank == 0:
        print_log(f'Training done. Last checkpoint: {ckpt}', logger='current')
    finish_distributed()
    return runner


if __name__ == '__main__':
    main()
