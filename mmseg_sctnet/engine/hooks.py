"""Hooks that make long training runs fail loudly and resume exactly.

All three are registered in ``configs/_base_/default_runtime.py``
(``custom_hooks``), so every SCTNet config uses them:

* :class:`DatasetCheckHook` checks a sample of the training (and
  validation) data before anything is loaded and refuses to start on errors
  (:mod:`mmseg_sctnet.datasets.checker`).
* :class:`NonFiniteLossHook` stops training at the first iteration whose
  loss is NaN/inf, naming the iteration and the loss term(s), before a
  checkpoint with broken weights can be written; it also refuses to write a
  checkpoint whose weights are not finite.
* :class:`ExactResumeHook` stores the random-number-generator states in
  every checkpoint and restores them on ``--resume``, so that a resumed run
  continues with exactly the losses an uninterrupted run has (CPU, fixed
  seed, ``num_workers=0``).
"""
import logging
import math
import os.path as osp
import random
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..datasets.checker import check_dataset
from ..io.errors import DatasetCheckError, NonFiniteLossError

__all__ = ['DatasetCheckHook', 'NonFiniteLossHook', 'ExactResumeHook']


def _is_training_run(runner) -> bool:
    """True inside ``runner.train()`` (the train loop has been built)."""
    return isinstance(getattr(runner, '_train_loop', None), BaseLoop)


def _unwrap(model):
    return getattr(model, 'module', model)


@HOOKS.register_module()
class DatasetCheckHook(Hook):
    """Check a sample of the data before training starts.

    Runs :func:`mmseg_sctnet.datasets.check_dataset` on ``num_samples``
    (image, label) pairs of the training set and ``val_samples`` of the
    validation set (every entry's files are checked for existence), with
    the model's ``num_classes`` and ``ignore_index``. Errors stop training
    with one message that names the files and the fix; warnings stop it too
    unless allowed.

    The config key ``dataset_check`` overrides the arguments, e.g.
    ``dataset_check = dict(allow_warnings=True)`` (what
    ``tools/train.py --allow-dataset-warnings`` sets) or
    ``dict(num_samples=100)``; ``dict(enable=False)`` skips the check.
    ``python tools/check_dataset.py CONFIG`` checks every file.

    Args:
        num_samples (int): training pairs decoded. Default 16.
        val_samples (int): validation pairs decoded. Default 8.
        allow_warnings (bool): go on after warnings. Default False.
        enable (bool): run the check. Default True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 num_samples: int = 16,
                 val_samples: int = 8,
                 allow_warnings: bool = False,
                 enable: bool = True):
        self.num_samples = num_samples
        self.val_samples = val_samples
        self.allow_warnings = allow_warnings
        self.enable = enable
        self.reports = []

    def _options(self, runner) -> dict:
        opts = dict(
            num_samples=self.num_samples,
            val_samples=self.val_samples,
            allow_warnings=self.allow_warnings,
            enable=self.enable)
        cfg = getattr(runner, 'cfg', None)
        user = cfg.get('dataset_check', None) if cfg is not None else None
        if user:
            unknown = set(user) - set(opts)
            if unknown:
                raise DatasetCheckError(
                    f'dataset_check has unknown key(s) {sorted(unknown)}; '
                    f'known: {sorted(opts)}')
            opts.update(user)
        return opts

    def before_run(self, runner) -> None:
        if not _is_training_run(runner):
            return  # test()/val(): the data are checked by the metric run
        opts = self._options(runner)
        if not opts['enable']:
            print_log(
                'Dataset check disabled (dataset_check.enable=False).',
                logger='current')
            return
        head = getattr(_unwrap(runner.model), 'decode_head', None)
        num_classes = getattr(head, 'num_classes', None)
        ignore_index = getattr(head, 'ignore_index', None)
        splits = [('train', runner.train_loop.dataloader.dataset,
                   opts['num_samples'])]
        val_loop = getattr(runner, '_val_loop', None)
        if val_loop is not None and hasattr(val_loop, 'dataloader') and \
                opts['val_samples']:
            splits.append(
                ('val', val_loop.dataloader.dataset, opts['val_samples']))
        self.reports = []
        for split, dataset, n in splits:
            report = check_dataset(
                dataset,
                num_classes=num_classes,
                ignore_index=ignore_index,
                max_files=n,
                split=split)
            self.reports.append(report)
            level = 'INFO' if report.ok() else 'WARNING'
            print_log(
                report.format(), logger='current', level=level_num(level))
        errors = [f for r in self.reports for f in r.errors]
        warnings = [f for r in self.reports for f in r.warnings]
        if errors or (warnings and not opts['allow_warnings']):
            cfg_name = getattr(runner.cfg, 'filename', None) or 'CONFIG'
            what = (f'{len(errors)} error(s)'
                    if errors else f'{len(warnings)} warning(s)')
            lines = [
                f'Training refused to start: the dataset check found '
                f'{what}.'
            ]
            for r in self.reports:
                for f in r.findings:
                    lines.append(f'[{r.split}] {f.format()}')
            lines.append(
                f'Fix the data or the config; `python tools/check_dataset.py '
                f'{cfg_name} --split train` checks every file.' +
                (''
                 if errors else ' To train anyway after reading the warnings: '
                 'tools/train.py --allow-dataset-warnings (config: '
                 'dataset_check = dict(allow_warnings=True)).'))
            raise DatasetCheckError('\n'.join(lines))


def level_num(name: str) -> int:
    return getattr(logging, name)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when a loss term becomes NaN/inf.

    After every training iteration the logged loss terms (``loss``,
    ``decode.loss_ce``, ``aux_0.loss_ce``, ``siam.loss_*``...) are checked;
    the first non-finite one raises :class:`NonFiniteLossError` naming the
    iteration, the term(s) and their values, the last good checkpoint and
    the usual causes. This hook runs before ``CheckpointHook``
    (``ABOVE_NORMAL`` < ``VERY_LOW``), so the weights of that step are
    never saved, and ``before_save_checkpoint`` refuses any checkpoint whose
    weights are not finite (e.g. a loss that was finite while the update was
    not).

    With a loss scaler (``AmpOptimWrapper``, ``--amp`` on a GPU: fp16 with
    dynamic loss scaling) a step whose gradients overflow is skipped by the
    scaler; with a finite loss this hook has nothing to say. An infinite
    loss term is tolerated ``amp_patience`` times in a row when the scaler
    skipped that step (its scale went down during the iteration, so the
    weights were not updated). A NaN loss term stops training under any
    optim wrapper, as does an infinite one without a loss scaler (bf16
    ``CPUBF16OptimWrapper``, fp32) or whose step was not skipped.

    Args:
        amp_patience (int): consecutive skipped steps with an infinite loss
            tolerated under a loss scaler. Default 20.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, amp_patience: int = 20):
        self.amp_patience = amp_patience
        self._bad_in_a_row = 0
        self._scale_before: Optional[float] = None

    @staticmethod
    def _loss_scaler(runner):
        """The optim wrapper's loss scaler (``AmpOptimWrapper``), or
        None."""
        return getattr(getattr(runner, 'optim_wrapper', None), 'loss_scaler',
                       None)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        scaler = self._loss_scaler(runner)
        self._scale_before = None if scaler is None else \
            float(scaler.get_scale())

    @staticmethod
    def non_finite_terms(outputs) -> Dict[str, float]:
        """``{name: value}`` of the non-finite entries of ``outputs``."""
        if not isinstance(outputs, dict):
            return {}
        names, values = [], []
        for k, v in outputs.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                names.append(k)
                values.append(v.detach().float().mean().reshape(()))
            elif isinstance(v, (float, int, np.floating)):
                names.append(k)
                values.append(torch.tensor(float(v)))
        if not values:
            return {}
        stacked = torch.stack([v.cpu() for v in values])
        if bool(torch.isfinite(stacked).all()):
            return {}
        return {
            n: float(x)
            for n, x in zip(names, stacked.tolist()) if not np.isfinite(x)
        }

    def _last_good(self, runner) -> Optional[str]:
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(pointer):
            with open(pointer) as f:
                return f.read().strip() or None
        return None

    def _message(self, runner, it: int, what: str) -> str:
        last = self._last_good(runner)
        cfg_name = getattr(runner.cfg, 'filename', None) or 'CONFIG'
        keep = (f'The last good checkpoint is {last} (resume after the fix: '
                f'tools/train.py {cfg_name} --resume {last}).'
                if last else 'No checkpoint has been written yet.')
        return (f'Training stopped at iteration {it}: {what}. The weights '
                f'after this step were not saved. {keep} Usual causes: a '
                'learning rate too high for this batch size (lower '
                'optim_wrapper.optimizer.lr or set optim_wrapper.clip_grad='
                'dict(max_norm=...)), label values outside [0, num_classes) '
                '(run tools/check_dataset.py CONFIG), broken images, or fp16 '
                'overflow with --amp.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        bad = self.non_finite_terms(outputs)
        if not bad:
            self._bad_in_a_row = 0
            return
        it = runner.iter + 1
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        scaler = self._loss_scaler(runner)
        nan = any(math.isnan(v) for v in bad.values())
        skipped = (scaler is not None and self._scale_before is not None
                   and float(scaler.get_scale()) < self._scale_before)
        if skipped and not nan:
            self._bad_in_a_row += 1
            if self._bad_in_a_row <= self.amp_patience:
                print_log(
                    f'Iteration {it}: non-finite loss term(s) {terms}; the '
                    'AMP loss scaler skipped this step '
                    f'({self._bad_in_a_row}/{self.amp_patience} in a row).',
                    logger='current',
                    level=level_num('WARNING'))
                return
        what = f'loss term(s) {terms} are not finite'
        if skipped and not nan:
            what += (f' in {self._bad_in_a_row} iterations in a row (the AMP '
                     'loss scaler skipped each step)')
        msg = self._message(runner, it, what)
        print_log(msg, logger='current', level=level_num('ERROR'))
        raise NonFiniteLossError(msg)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', {})
        bad = [
            k for k, v in state.items() if isinstance(v, torch.Tensor)
            and v.is_floating_point() and not bool(torch.isfinite(v).all())
        ]
        if bad:
            it = checkpoint.get('meta', {}).get('iter', runner.iter + 1)
            msg = self._message(
                runner, it, f'{len(bad)} weight tensor(s) are not finite '
                f'(e.g. {bad[:3]}), so this checkpoint was not written')
            print_log(msg, logger='current', level=level_num('ERROR'))
            raise NonFiniteLossError(msg)


class _RestoringIterator:
    """Wraps the train loop's data iterator: skips ``skip`` fetches (the
    loop's fast-forward after resume), then restores the hook's pending RNG
    state right before the next real fetch."""

    def __init__(self, iterator, hook, skip: int):
        self._it = iterator
        self._hook = hook
        self._skip = skip

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
        else:
            self._hook._restore_pending()
        return next(self._it)

    def __getattr__(self, name):
        return getattr(self._it, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` continue exactly where the checkpoint was taken.

    MMEngine restores weights, optimizer, schedulers and message hub on
    resume, and the ``InfiniteSampler`` replays its order, but the random
    number generators restart from the seed: random augmentations and drop
    path then differ from an uninterrupted run. This hook

    * stores the Python, NumPy, torch (and CUDA) RNG states of every
      process in every checkpoint (``checkpoint['rng_state'] =
      {'world_size': W, 'ranks': [state of rank 0, ...]}``; plain
      tensors/arrays, loaded with ``weights_only=True``). MMEngine writes
      checkpoints on rank 0 only, so the states are gathered to rank 0
      first (``all_gather_object``), on every rank, right before the save:
      :class:`~mmseg_sctnet.engine.AtomicCheckpointHook` calls
      :meth:`before_save_checkpoint_all_ranks` there;
    * restores each rank's own state right before the first batch after
      the resume point is fetched (after MMEngine's fast-forward of the data
      iterator), and -- so that both runs take the same path -- also after
      every save in the uninterrupted run (a validation between the save
      and the next batch would otherwise consume random numbers in one run
      only).

    Exact equality also needs ``randomness=dict(seed=..., deterministic=
    True)``, ``num_workers=0`` (worker processes keep their own RNG state)
    and the same devices/threads. Resuming with another number of
    processes than the checkpoint was written with (or from a checkpoint
    of MMEngine's plain ``CheckpointHook`` in a multi-process run, which
    holds rank 0's state only) cannot continue the old random streams:
    every rank is then seeded with ``seed + 1009 * iteration + rank`` (a
    warning says so), so the resumed run is repeatable but not equal to an
    uninterrupted one.
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._pending: Optional[dict] = None
        self._loaded: Optional[dict] = None
        self._gathered: Optional[tuple] = None

    @staticmethod
    def capture() -> dict:
        state = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def restore(state: dict) -> None:
        if 'reseed' in state:
            seed = int(state['reseed']) % 2**32
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            return
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'].cpu())
        if 'cuda' in state and torch.cuda.is_available():
            cuda = [s.cpu() for s in state['cuda']]
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)

    def _restore_pending(self) -> None:
        if self._pending is not None:
            self.restore(self._pending)
            self._pending = None

    def before_save_checkpoint_all_ranks(self, runner) -> None:
        """Gather every rank's RNG state to rank 0 (all ranks call this
        right before a checkpoint is saved)."""
        state = self.capture()
        states = [state]
        if runner.world_size > 1:
            states = all_gather_object(state)
        self._gathered = (runner.iter, states)
        self._pending = state

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered is not None and gathered[0] == runner.iter:
            states = gathered[1]
        else:  # MMEngine's own CheckpointHook: this (master) rank only
            state = self.capture()
            states = [state]
            if runner.world_size == 1:
                self._pending = state
        checkpoint['rng_state'] = dict(
            world_size=runner.world_size, ranks=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('rng_state')

    def _state_to_resume(self, runner) -> Optional[dict]:
        loaded = self._loaded
        if 'ranks' not in loaded:  # written before per-rank states
            loaded = dict(world_size=1, ranks=[loaded])
        saved, states = loaded['world_size'], loaded['ranks']
        if saved == runner.world_size and len(states) == saved:
            print_log(
                'Random number generator states restored from the '
                f'checkpoint for iteration {runner.iter + 1}'
                f'{f" ({saved} processes)" if saved > 1 else ""}.',
                logger='current')
            return states[runner.rank]
        seed = (runner.seed or 0) + 1009 * runner.iter + runner.rank
        why = (f'it was written by {saved} processes and this run has '
               f'{runner.world_size}' if saved != runner.world_size else
               f'it holds the states of {len(states)} of {saved} processes')
        print_log(
            'The random number generator states of the checkpoint cannot '
            f'be continued: {why}. Each process is seeded with seed + 1009 '
            '* iteration + rank instead: the resumed run is repeatable but '
            'its random augmentations differ from an uninterrupted run.',
            logger='current',
            level=level_num('WARNING'))
        return dict(reseed=seed)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if not hasattr(loop, 'dataloader_iterator'):
            return  # epoch-based loops: nothing to wrap
        if runner.iter > 0 and self._loaded is not None:
            self._pending = self._state_to_resume(runner)
        self._loaded = None
        loop.dataloader_iterator = _RestoringIterator(
            loop.dataloader_iterator, self, skip=runner.iter)


def _as_python_state(state: Sequence):
    """``random.setstate`` needs tuples; checkpoints may hold lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
