"""A training run from a config (MMEngine's Runner, as MMSegmentation's
``tools/train.py``), with the checks that come first: the pieces of
``tools/train.py`` (:func:`mmseg_sctnet.apis.train.train`) that the demo
and the experiments reuse.

Before anything is built: the config and its ``--cfg-options`` keys, the
checkpoint to resume or load from (readable, a checkpoint), the work dir
(creatable, not an input, not holding the config under the name the run
dumps its config to) and the data folders. Then the runner is built (a
config argument a component does not take is one ``error:`` line) and
trained; Ctrl-C ends with one line naming the last complete checkpoint.
"""
import logging
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.checker import check_data_paths
from ..io.checkpoint import read_checkpoint
from ..io.config import explain_build_errors, load_config
from ..io.errors import ConfigError, RunInterrupted
from ..io.files import check_config_dump, check_output_folder
from .distributed import (adapt_to_cpu_distributed, cuda_available,
                          init_cpu_distributed)
from .resume import resolve_auto_resume
from .runner import (build_runner, ensure_reliability_hooks,
                     make_run_names_unique)

__all__ = [
    'build_train_config', 'build_train_runner', 'run_training',
    'last_checkpoint'
]


def _enable_amp(cfg: Config) -> None:
    if not cuda_available():
        raise ConfigError("--amp needs a CUDA GPU (MMEngine's AmpOptimWrapper "
                          'does not run on CPU); drop --amp.')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP is already enabled in the config.', logger='current',
                  level=logging.WARNING)
    elif wrapper != 'OptimWrapper':
        raise ConfigError('--amp works with optim_wrapper.type=OptimWrapper, '
                          f'the config has {wrapper!r}.')
    else:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       resume: Optional[str] = None,
                       amp: bool = False,
                       cfg_options: Optional[dict] = None,
                       allow_dataset_warnings: bool = False,
                       launcher: str = 'none') -> Config:
    """The run's config: the file, checked ``cfg_options`` and the flags.

    Args:
        resume: ``'auto'`` (the newest complete checkpoint of the work
            dir), a checkpoint path, or None.
        Others: as the options of ``tools/train.py``.

    Every input and output path is checked here (see the module doc).
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    if allow_dataset_warnings:
        cfg.dataset_check = dict(allow_warnings=True)
    if amp:
        _enable_amp(cfg)
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
        # the newest complete checkpoint in work_dir (a missing, empty or
        # dangling last_checkpoint falls back to the newest iter_*.pth)
        resolve_auto_resume(cfg)
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and '://' not in load_from:
        read_checkpoint(
            load_from, 'Checkpoint to resume from'
            if cfg.get('resume') else 'load_from checkpoint')
    check_output_folder(cfg.work_dir, '--work-dir', inputs=[config])
    check_config_dump(cfg.work_dir, config)
    adapt_to_cpu_distributed(cfg, launcher)
    ensure_reliability_hooks(cfg)
    make_run_names_unique(cfg)
    return cfg


def last_checkpoint(work_dir: str) -> Optional[str]:
    """Path recorded in ``work_dir/last_checkpoint`` (MMEngine), or None."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        return f.read().strip() or None


def build_train_runner(cfg: Config, launcher: str = 'none',
                       runner_cls=None):
    """The training runner of ``cfg`` (not started), after checking that
    the data folders exist (:func:`build_runner`)."""
    # a missing data folder fails here with its path, not inside MMEngine
    check_data_paths(cfg, splits=('train', 'val'))
    init_cpu_distributed(cfg, launcher)
    return build_runner(cfg, runner_cls)


def _interrupted(exc: BaseException) -> bool:
    """True for Ctrl-C, also when a library turned it into another error
    while handling it (MMEngine's ``Config.pretty_text``, run for every
    checkpoint's meta, re-raises any exception from yapf as a
    ``SyntaxError``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def run_training(runner):
    """``runner.train()``; config mistakes found while building datasets or
    hooks are one line, Ctrl-C names the last complete checkpoint."""
    try:
        with explain_build_errors(runner.cfg, runner.cfg.filename
                                  or 'the config'):
            runner.train()
    except BaseException as e:
        if not _interrupted(e):
            raise
        ckpt = last_checkpoint(runner.work_dir)
        raise RunInterrupted(
            f'training interrupted at iteration {runner.iter}; ' +
            (f'the last complete checkpoint is {ckpt}; continue with '
             '--resume.' if ckpt else 'no checkpoint was written yet.')
        ) from None
    return runner
