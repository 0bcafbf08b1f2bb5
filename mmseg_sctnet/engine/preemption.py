"""Stop training cleanly on SIGTERM / SIGUSR1 (pre-emption, a time limit).

:class:`PreemptionHook` is in ``custom_hooks`` of
``configs/_base_/default_runtime.py`` (and among the reliability hooks
``tools/train.py`` puts back). When any process of the run receives SIGTERM
or SIGUSR1, training

1. finishes the iteration it is in (every rank: after each iteration the
   ranks take the largest signal number any of them received,
   ``all_reduce(max)``, so all of them stop after the same iteration);
2. writes the checkpoint of that iteration through
   :meth:`AtomicCheckpointHook.save_now` (atomic, the RNG states of every
   rank gathered as for an interval save, so ``--resume`` continues
   exactly), unless that iteration was just saved;
3. runs a validation that is due at that iteration, then leaves the loop
   (``train_loop.stop_training``, MMEngine's way, as ``EarlyStoppingHook``
   does), so the ``after_train``/``after_run`` hooks run as usual;
4. logs one line (the checkpoint and how to resume) and raises
   :class:`~mmseg_sctnet.io.errors.RunStopped` at the end of
   ``runner.train()``: ``tools/train.py`` exits with status 75
   (``EX_TEMPFAIL``; :data:`~mmseg_sctnet.io.errors.EXIT_STOPPED`).

A signal during the last iteration lets training end normally (exit 0).
Further signals while the checkpoint is written are recorded and ignored
(and the write is atomic in any case). The handlers are installed when
training starts -- by :func:`~mmseg_sctnet.engine.training_run.run_training`
before the data-loader workers are forked, so that workers receiving the
same signal (Slurm signals every process of a step) inherit them and keep
running, else at ``before_train`` -- and the previous handlers are put back
when training ends (``after_run``, or by ``run_training`` on any error; after
a failed ``runner.train()`` outside ``run_training`` the first signal once
the runner is gone puts them back and is handed on). Importing this module
changes nothing.

With the environment variable ``SCTNET_STOP_FILE`` set (the launchers
``tools/dist_train.sh`` and ``tools/slurm_train.sh`` set it), every rank
writes the stop line to that file and exits with 0 instead; the script
exits with 75 when the file is there. (torchrun reports a worker's status
75 as a failure with a traceback, and srun ``--kill-on-bad-exit`` would kill
the ranks still shutting down.)
"""
import os
import os.path as osp
import signal
import threading
import weakref
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

from ..io.atomic import atomic_write
from ..io.errors import EXIT_STOPPED, RunStopped
from .checkpoint_hook import AtomicCheckpointHook

__all__ = ['PreemptionHook', 'STOP_SIGNALS', 'STOP_FILE_ENV']

#: the signals that stop training after the current iteration
STOP_SIGNALS = ('SIGTERM', 'SIGUSR1')
#: file every rank writes the stop line to (set by the launcher scripts)
STOP_FILE_ENV = 'SCTNET_STOP_FILE'
_WARNING = 30


def _shown(path: str) -> str:
    """``path`` relative to the current directory when it is inside it."""
    if not path:
        return path
    rel = osp.relpath(osp.abspath(path))
    return path if rel.startswith('..') else rel


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Save a checkpoint and stop after the current iteration on a signal.

    See the module documentation. Runs last (``LOWEST``), after
    ``CheckpointHook`` and the other hooks of the iteration, so the
    checkpoint holds the same state as an interval checkpoint of that
    iteration. Needs an iteration-based loop and
    :class:`~mmseg_sctnet.engine.AtomicCheckpointHook` (the configs' checkpoint
    hook); without them it says so once and leaves the signals alone.

    Args:
        signals (Sequence[str]): signal names that stop training.
            Default ``('SIGTERM', 'SIGUSR1')``.
    """

    priority = 'LOWEST'

    def __init__(self, signals: Sequence[str] = STOP_SIGNALS):
        nums = []
        for name in signals:
            num = getattr(signal, str(name), None)
            if not isinstance(num, signal.Signals):
                raise ValueError(
                    f'PreemptionHook: {name!r} is not a signal name of this '
                    f'platform; use e.g. {list(STOP_SIGNALS)}.')
            nums.append(num)
        self.signals = tuple(nums)
        self._previous: Dict[int, object] = {}
        self._pid = os.getpid()
        self._runner = None  # weak reference, once training started
        self._received: List[int] = []
        self._checkpoint_hook: Optional[AtomicCheckpointHook] = None
        #: after a stop: dict(signal, iteration, checkpoint, message,
        #: exit_status)
        self.stopped: Optional[dict] = None

    # -- the handlers ---------------------------------------------------
    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # a data-loader worker forked after the install (it got the
            # signal sent to every process): keep serving batches until the
            # trainer shuts it down; a second signal ends it as usual
            signal.signal(signum, signal.SIG_DFL)
            return
        if self._runner is not None and self._runner() is None:
            # left installed by a runner.train() that ended with an error
            # outside run_training: put the old handlers back and let the
            # signal do what it did before
            self.restore_signal_handlers()
            os.kill(os.getpid(), signum)
            return
        # only record: the training loop acts on it between iterations
        self._received.append(int(signum))

    def install_signal_handlers(self) -> bool:
        """Install the handlers (once); False where Python does not allow
        it (not the main thread)."""
        if self._previous:
            return True
        if threading.current_thread() is not threading.main_thread():
            print_log(
                'PreemptionHook: training does not run in the main thread, '
                'so no signal handler can be installed; SIGTERM/SIGUSR1 end '
                'the process as usual.',
                logger='current',
                level=_WARNING)
            return False
        self._pid = os.getpid()
        for num in self.signals:
            self._previous[num] = signal.signal(num, self._handle)
        return True

    def restore_signal_handlers(self) -> None:
        """Put back the handlers that were there before."""
        previous, self._previous = self._previous, {}
        for num, handler in previous.items():
            signal.signal(num, handler)

    # -- the hook -------------------------------------------------------
    def before_train(self, runner) -> None:
        self.stopped = None
        ckpt = next((h for h in runner.hooks
                     if isinstance(h, AtomicCheckpointHook)), None)
        why = None
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            why = 'the train loop is not iteration-based'
        elif ckpt is None:
            why = ('the checkpoint hook is not AtomicCheckpointHook '
                   "(default_hooks.checkpoint.type)")
        elif ckpt.by_epoch:
            why = 'the checkpoint hook saves by epoch'
        if why:
            self.restore_signal_handlers()
            print_log(
                f'PreemptionHook is off: {why}. SIGTERM/SIGUSR1 end training '
                'without a checkpoint of the current iteration.',
                logger='current',
                level=_WARNING)
            return
        self._checkpoint_hook = ckpt
        self._runner = weakref.ref(runner)
        if self.install_signal_handlers():
            names = '/'.join(s.name for s in self.signals)
            print_log(
                f'{names}: training saves a checkpoint after the current '
                f'iteration and exits with status {EXIT_STOPPED} '
                '(docs/reliability.md).',
                logger='current')

    def _agreed_signal(self, runner) -> int:
        """The largest signal number any rank has received (0: none)."""
        local = max(self._received, default=0)
        if runner.world_size == 1:
            return local
        flag = torch.tensor([local], dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag.item())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self._checkpoint_hook is None or self.stopped is not None:
            return
        signum = self._agreed_signal(runner)
        if not signum:
            return
        name = signal.Signals(signum).name
        it = runner.iter + 1
        if it >= runner.max_iters:
            print_log(
                f'{name} received during the last iteration ({it}): '
                'training ends normally.',
                logger='current')
            return
        path = self._checkpoint_hook.save_now(runner)
        runner.train_loop.stop_training = True
        msg = (f'Training stopped by {name} after iteration {it} of '
               f'{runner.max_iters}: checkpoint {_shown(path)} saved. '
               'Continue with the same command and --resume, e.g. '
               f'`{self._resume_command(runner)}` (exit status '
               f'{EXIT_STOPPED}).')
        print_log(msg, logger='current', level=_WARNING)
        # under a launcher script this process exits with 0 and the script
        # with 75 (torchrun and srun would report 75 as a failure)
        status = 0 if self._write_stop_file(msg) else EXIT_STOPPED
        self.stopped = dict(
            signal=name, iteration=it, checkpoint=path, message=msg,
            exit_status=status)

    @staticmethod
    def _resume_command(runner) -> str:
        cfg = _shown(getattr(runner.cfg, 'filename', None) or 'CONFIG')
        work = _shown(runner.work_dir)
        tail = f'{cfg} --work-dir {work} --resume'
        launcher = getattr(runner, 'launcher', 'none')
        if launcher == 'pytorch':
            return f'bash tools/dist_train.sh {cfg} {runner.world_size} ' \
                   f'--work-dir {work} --resume'
        if launcher == 'slurm':
            return 'bash tools/slurm_train.sh PARTITION JOB_NAME ' + tail
        return 'python tools/train.py ' + tail

    @staticmethod
    def _write_stop_file(msg: str) -> bool:
        """Write the stop line to ``$SCTNET_STOP_FILE``; True if written."""
        path = os.environ.get(STOP_FILE_ENV)
        if not path:
            return False
        try:
            atomic_write(path, msg + '\n')
        except OSError as e:
            print_log(
                f'{STOP_FILE_ENV}={path} could not be written ({e}); this '
                f'process exits with {EXIT_STOPPED}.',
                logger='current',
                level=_WARNING)
            return False
        return True

    def after_run(self, runner) -> None:
        self.restore_signal_handlers()
        stopped, self.stopped = self.stopped, None
        self._received = []
        self._checkpoint_hook = None
        self._runner = None
        if stopped is not None:
            raise RunStopped(stopped['message'], stopped['checkpoint'],
                             stopped['iteration'], stopped['exit_status'])
