"""A ``CheckpointHook`` whose saves survive ``kill -9``.

Configs name it: ``default_hooks.checkpoint.type='AtomicCheckpointHook'``
(``configs/_base_/schedules/schedule_160k.py``). MMEngine's own
``CheckpointHook``, file backends and functions are not modified; this
subclass differs from it in four points:

* checkpoints in a local folder are written through the ``'atomic_local'``
  file backend (:class:`mmseg_sctnet.compat.atomic_io.AtomicLocalBackend`:
  temporary file, ``fsync``, :func:`os.replace`, ``fsync`` of the folder);
* ``work_dir/last_checkpoint`` is written the same way
  (:func:`mmseg_sctnet.compat.atomic_io.atomic_write`);
* the oldest checkpoint (``max_keep_ckpts``) and the previous best
  checkpoint (``save_best``) are deleted only after the new checkpoint and
  the pointer are on disk (MMEngine deletes them first), so a kill in
  between never leaves fewer complete checkpoints than there were;
* temporary files of saves that a killed process left behind are removed
  when training starts, and published checkpoints (``published_keys``) are
  written atomically and named after the SHA-256 of the written file.

Before each regular save it calls the hook method
``before_save_checkpoint_all_ranks(runner)`` on every process (MMEngine's
``before_save_checkpoint`` runs on rank 0 only, inside the save):
:class:`~mmseg_sctnet.engine.ExactResumeHook` gathers the RNG states of all
ranks there. :meth:`AtomicCheckpointHook.save_now` saves the iteration that
has just finished on request (:class:`~mmseg_sctnet.engine.PreemptionHook`).

Other backends (``backend_args`` naming e.g. ``petrel``) are used as given;
whether their ``put`` is atomic is up to the storage (docs/reliability.md).
"""
import hashlib
import io
import os.path as osp
from typing import Iterable, List, Optional, Tuple

import torch
from mmengine.dist import is_main_process, master_only
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..io.atomic import ATOMIC_BACKEND, atomic_write, remove_stale_temp_files
from ..io.checkpoint import read_checkpoint

__all__ = ['AtomicCheckpointHook']


def _is_local(path: Optional[str]) -> bool:
    return path is None or '://' not in str(path)


class _DeferredRemoval:
    """Stands in for a file backend; ``remove``/``rmtree`` are recorded and
    run by :meth:`flush`, every other attribute is the backend's."""

    def __init__(self, backend):
        self.backend = backend
        self.pending: List[Tuple[str, str]] = []

    def remove(self, path):
        self.pending.append(('remove', path))

    def rmtree(self, path):
        self.pending.append(('rmtree', path))

    def flush(self, keep: Iterable[Optional[str]] = ()) -> None:
        """Run the recorded deletions, except of the paths in ``keep``."""
        keep = {str(p) for p in keep if p is not None}
        pending, self.pending = self.pending, []
        for op, path in pending:
            if str(path) not in keep:
                getattr(self.backend, op)(path)

    def __getattr__(self, name):
        return getattr(self.backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` with crash-safe saving.

    Takes exactly ``CheckpointHook``'s arguments. When the checkpoints go
    to a local folder and ``backend_args`` names no backend (or
    ``'local'``), ``backend_args['backend']`` becomes ``'atomic_local'``.
    """

    @staticmethod
    def _backend_args_for(out_dir: str,
                          backend_args: Optional[dict]) -> Optional[dict]:
        """``backend_args`` with ``'atomic_local'`` for a local folder."""
        args = dict(backend_args or {})
        if _is_local(out_dir) and args.get('backend', 'local') == 'local':
            args['backend'] = ATOMIC_BACKEND
            return args
        return backend_args

    def before_train(self, runner) -> None:
        if self.file_client_args is None:
            self.backend_args = self._backend_args_for(
                self.out_dir if self.out_dir is not None else runner.work_dir,
                self.backend_args)
        super().before_train(runner)
        if is_main_process():
            folders = {runner.work_dir}
            if _is_local(self.out_dir):
                folders.add(self.out_dir)
            removed = [
                p for d in sorted(folders) if osp.isdir(d)
                for p in remove_stale_temp_files(d)
            ]
            if removed:
                print_log(
                    f'Removed {len(removed)} temporary file(s) of '
                    f'interrupted checkpoint saves: {removed}',
                    logger='current')

    def _remove_checkpoint(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed saves folders
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """Save ``filename_tmpl.format(step)``, then the pointer, then
        delete the checkpoint that ``max_keep_ckpts`` pushes out.

        The bookkeeping (``keep_ckpt_ids`` and ``last_ckpt`` in the message
        hub, updated before the save so the checkpoint holds them) is
        MMEngine's; only the order of writing and deleting differs.
        """
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            # _save_checkpoint and _save_best_checkpoint may both save `step`
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # hooks that need every rank (runner.save_checkpoint and its
        # before_save_checkpoint run on rank 0 only), e.g. ExactResumeHook
        # gathering each rank's RNG state
        runner.call_hook('before_save_checkpoint_all_ranks')
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None and outdated != step:
            self._remove_checkpoint(
                self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(outdated)))

    def save_now(self, runner) -> str:
        """Save the checkpoint of the iteration that has just finished, as
        an interval save does (every rank calls it: the RNG states of all
        ranks are gathered first), unless that iteration's checkpoint was
        saved already; returns its path. Used by
        :class:`~mmseg_sctnet.engine.PreemptionHook` from
        ``after_train_iter`` (iteration-based training)."""
        step = runner.iter + 1
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.last_ckpt != path:
            runner.logger.info(f'Saving checkpoint at {step} iterations')
            self._save_checkpoint(runner)
        return path

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """MMEngine's, with the previous best checkpoint deleted after the
        new one (and the re-saved ``iter_N.pth``) are written."""
        deferred = _DeferredRemoval(self.file_backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = deferred.backend
        best = [getattr(self, 'best_ckpt_path', None)]
        best += list((getattr(self, 'best_ckpt_path_dict', None)
                      or {}).values())
        deferred.flush(keep=best + [self.last_ckpt])

    @master_only
    def _publish_model(self, runner, ckpt_path: str) -> None:
        """Write ``<ckpt>-<sha8>.pth`` with only ``published_keys``.

        Unlike MMEngine's, the file is written atomically and ``sha8`` is
        the start of the SHA-256 of the file itself (what ``sha256sum``
        prints and what :mod:`mmseg_sctnet.io.checksum` checks).
        """
        checkpoint = read_checkpoint(ckpt_path)
        removed = [k for k in checkpoint if k not in self.published_keys]
        for key in removed:
            checkpoint.pop(key)
        if removed:
            print_log(
                f'Key {removed} will be removed because they are not found '
                'in published_keys.',
                logger='current')
        with io.BytesIO() as f:
            torch.save(checkpoint, f)
            data = f.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        final_path = osp.splitext(ckpt_path)[0] + f'-{sha[:8]}.pth'
        self.file_backend.put(data, final_path)
        print_log(
            f'The checkpoint ({ckpt_path}) is published to {final_path}.',
            logger='current')
