#!/usr/bin/env python
"""Train a segmentor (SCTNet with SIAM by default) with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--allow-dataset-warnings]
                          [--auto-scale-lr]
                          [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_train.sh CONFIG GPUS [...]        # one node, GPUS procs
    NNODES=2 NODE_RANK=0 MASTER_ADDR=host bash tools/dist_train.sh ...
    bash tools/slurm_train.sh PARTITION JOB CONFIG [...]

The work is ``mmseg_sctnet.apis.train.train``: paths and config checked
first, the reliability hooks kept, gloo + BN for distributed runs without
CUDA (``mmseg_sctnet.engine.distributed``). On SIGTERM/SIGUSR1 it saves a
checkpoint after the current iteration and exits with status 75
(``PreemptionHook``; continue with ``--resume``).
"""
import argparse
import os

from mmengine.config import DictAction

from mmseg_sctnet.apis.train import train
from mmseg_sctnet.io.errors import exit_on_user_error


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
        help='mixed precision: fp16 autocast with dynamic loss scaling on a '
        'CUDA GPU, bf16 autocast on a CPU with AVX512-BF16/AMX (refused on '
        'other CPUs); the losses are computed in fp32')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.use_siam=False '
        'train_dataloader.batch_size=4; keys must exist in the config '
        '(+key=value adds a new one)')
    p.add_argument(
        '--allow-dataset-warnings',
        action='store_true',
        help='continue when the dataset check before training only finds '
        'warnings (sets cfg.dataset_check.allow_warnings=True)')
    p.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale every learning rate linearly to this run\'s total batch '
        '(processes x train_dataloader.batch_size) from the one the config '
        'is tuned for (auto_scale_lr.base_batch_size: 16 on Cityscapes, 32 '
        'on ADE20K, 16 on COCO-Stuff-10K)')
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


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    return train(args.config, args.launcher, work_dir=args.work_dir,
                 resume=args.resume, amp=args.amp,
                 cfg_options=args.cfg_options,
                 allow_dataset_warnings=args.allow_dataset_warnings,
                 auto_scale_lr=args.auto_scale_lr)


if __name__ == '__main__':
    main()
