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
from .amp import AMP_WRAPPERS, amp_optim_wrapper
from .distributed import (adapt_to_cpu_distributed, cuda_available,
                          init_cpu_distributed)
from .preemption import PreemptionHook
from .resume import resolve_auto_resume
from .runner import (build_runner, ensure_reliability_hooks,
                     make_run_names_unique)

__all__ = [
    'build_train_config', 'build_train_runner', 'run_training',
    'last_checkpoint', 'lr_scaling_note'
]


def _enable_amp(cfg: Config) -> None:
    """``--amp``: fp16 with dynamic loss scaling on a CUDA GPU, bf16 on a
    CPU with native bf16, else one refusal line (:mod:`.amp`)."""
    options = amp_optim_wrapper(cuda_available())
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in AMP_WRAPPERS:
        print_log(f'Mixed precision is already enabled in the config '
                  f'({wrapper}).', logger='current', level=logging.WARNING)
    elif wrapper != 'OptimWrapper':
        raise ConfigError('--amp works with optim_wrapper.type=OptimWrapper, '
                          f'the config has {wrapper!r}.')
    else:
        cfg.optim_wrapper.update(options)
        print_log(f'--amp: {options["type"]} (' +
                  ('fp16 autocast, dynamic loss scaling' if cuda_available()
                   else 'bf16 autocast on the CPU') +
                  '; losses computed in fp32).', logger='current')


def _enable_auto_scale_lr(cfg: Config, config: str) -> None:
    """``--auto-scale-lr``: MMEngine's ``auto_scale_lr.enable``; refused
    (one line) when the config does not say which total batch its learning
    rate is for."""
    scale = dict(cfg.get('auto_scale_lr', None) or {})
    base = scale.get('base_batch_size')
    if isinstance(base, bool) or not isinstance(base, int) or base <= 0:
        raise ConfigError(
            f'--auto-scale-lr: {config} has no auto_scale_lr.base_batch_size'
            f' (found {base!r}): the total batch (GPUs x '
            'train_dataloader.batch_size) its learning rate is tuned for. '
            'Add auto_scale_lr = dict(base_batch_size=N) to the config, or '
            'drop --auto-scale-lr.')
    scale['enable'] = True
    cfg.auto_scale_lr = scale


def lr_scaling_note(cfg: Config, world_size: int) -> Optional[str]:
    """One line on this run's learning rate and total batch, or None.

    With ``auto_scale_lr.enable`` MMEngine multiplies every learning rate
    by ``world_size * train_dataloader.batch_size / base_batch_size`` when
    training starts (``Runner.scale_lr``); the line names the base batch,
    the real batch, the factor and the optimizer's lr before and after.
    Without it, a real batch other than the base batch gets a hint.
    """
    scale = cfg.get('auto_scale_lr', None) or {}
    base = scale.get('base_batch_size')
    batch = (cfg.get('train_dataloader', None) or {}).get('batch_size')
    if not base or not batch:
        return None
    real = world_size * batch
    factor = real / base
    lr = (cfg.get('optim_wrapper', None) or {}).get('optimizer', {}).get('lr')
    batch_text = (f'{world_size} process(es) x {batch} images = {real}')
    if scale.get('enable', False):
        lr_text = (f'lr {lr:g} -> {lr * factor:g}' if isinstance(
            lr, (int, float)) else 'every optimizer\'s lr scaled')
        return (f'auto_scale_lr: the lr is for a total batch of {base} '
                f'(auto_scale_lr.base_batch_size), this run has '
                f'{batch_text}: every learning rate x {real}/{base} = '
                f'{factor:g}, {lr_text}.')
    if real == base or not isinstance(lr, (int, float)):
        return None
    return (f'This run has a total batch of {batch_text}; the lr {lr:g} is '
            f'for {base} (auto_scale_lr.base_batch_size). --auto-scale-lr '
            f'scales it linearly (x{factor:g}: {lr * factor:g}).')


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       resume: Optional[str] = None,
                       amp: bool = False,
                       cfg_options: Optional[dict] = None,
                       allow_dataset_warnings: bool = False,
                       launcher: str = 'none',
                       auto_scale_lr: bool = False) -> Config:
    """The run's config: the file, checked ``cfg_options`` and the flags.

    Args:
        resume: ``'auto'`` (the newest complete checkpoint of the work
            dir), a checkpoint path, or None.
        auto_scale_lr: switch on MMEngine's ``auto_scale_lr`` (every
            learning rate x real total batch / ``base_batch_size``); the
            config must name its ``auto_scale_lr.base_batch_size``.
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
    if auto_scale_lr:
        _enable_auto_scale_lr(cfg, config)
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
    runner = build_runner(cfg, runner_cls)
    note = lr_scaling_note(cfg, runner.world_size)
    if note:
        print_log(note, logger='current')
    return runner


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
    hooks are one line, Ctrl-C names the last complete checkpoint.

    The :class:`~mmseg_sctnet.engine.PreemptionHook` handlers (SIGTERM,
    SIGUSR1) are installed before ``runner.train()`` forks the data-loader
    workers (they inherit them and survive a signal sent to every process)
    and put back afterwards, also on errors; a stop on such a signal raises
    :class:`~mmseg_sctnet.io.errors.RunStopped` (exit status 75)."""
    stoppers = [h for h in runner.hooks if isinstance(h, PreemptionHook)]
    try:
        for hook in stoppers:
            hook.install_signal_handlers()
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
    finally:
        for hook in stoppers:
            hook.restore_signal_handlers()
    return runner
