"""The body of ``tools/train.py``: build the checked config and the
runner, train, name the last checkpoint.

The pieces (config and path checks, runner, Ctrl-C handling, CPU-only
distributed runs) are :mod:`mmseg_sctnet.engine.training_run`, which the demo
and the experiments reuse.
"""
from mmengine.logging import print_log

from ..engine.distributed import finish_distributed
from ..engine.training_run import (build_train_config, build_train_runner,
                                   last_checkpoint, run_training)
from ..io.errors import RunStopped

__all__ = ['train']


def train(config: str, launcher: str = 'none', **options):
    """Everything ``tools/train.py`` does; returns the finished runner.

    ``options`` are those of
    :func:`~mmseg_sctnet.engine.training_run.build_train_config`
    (``work_dir``, ``resume``, ``amp``, ``cfg_options``,
    ``allow_dataset_warnings``, ``auto_scale_lr``).

    A stop on SIGTERM/SIGUSR1 (:class:`~mmseg_sctnet.engine.PreemptionHook`)
    raises :class:`~mmseg_sctnet.io.errors.RunStopped` after every rank has
    finished (``tools/train.py`` exits with status 75)."""
    cfg = build_train_config(config, launcher=launcher, **options)
    try:
        runner = run_training(build_train_runner(cfg, launcher))
    except RunStopped:
        finish_distributed()
        raise
    ckpt = last_checkpoint(runner.work_dir)
    if ckpt is not None and runner.rank == 0:
        print_log(f'Training done. Last checkpoint: {ckpt}', logger='current')
    finish_distributed()
    return runner
