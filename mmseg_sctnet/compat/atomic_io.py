"""Crash-safe (atomic) writes for checkpoints and MMEngine's pointer file.

A training run can be killed at any moment (``kill -9``, a pre-empted
cluster job, a full node). MMEngine writes a checkpoint by opening the
final path and streaming bytes into it, so a kill during a save leaves a
truncated ``iter_N.pth`` -- and ``last_checkpoint`` (written the same way)
may point to it or be empty. ``--resume`` then fails or, worse, loads
garbage.

:func:`install` (called by :func:`mmseg_sctnet.compat.apply`) makes every
local write that goes through MMEngine's file backends atomic:

* :class:`AtomicLocalBackend` replaces MMEngine's ``LocalBackend`` (the
  backend registered as ``'local'`` and for paths without a ``scheme://``
  prefix). ``put``/``put_text`` write a temporary file in the *same*
  directory, ``fsync`` it, then ``os.replace`` it onto the final name and
  ``fsync`` the directory. A reader sees either the old file or the complete
  new one, never a partial file. ``mmengine.runner.save_checkpoint`` (used by
  ``Runner.save_checkpoint`` / ``CheckpointHook``) writes through it.
* ``CheckpointHook`` writes ``work_dir/last_checkpoint`` with a plain
  ``open(..., 'w')``; that one call is routed to :class:`AtomicTextFile`.
* ``CheckpointHook`` deletes the oldest checkpoint (``max_keep_ckpts``)
  *before* writing the new one; the deletion is deferred until the new
  checkpoint and the pointer are on disk, so a kill in between never leaves
  the run with fewer complete checkpoints than it had.
* ``find_latest_checkpoint`` (auto ``--resume``) falls back to the newest
  ``iter_*.pth`` / ``epoch_*.pth`` when the pointer is missing or names a
  file that is gone.

Temporary files are named ``.<name>.<pid>.<token>.sctnet-tmp``; a killed
save can leave one behind, :func:`remove_stale_temp_files` deletes those of
processes that are no longer running (done when training starts).

For tests only: the environment variable ``SCTNET_TEST_SLOW_SAVE`` set to
``NAME:SECONDS`` (e.g. ``iter_4.pth:30``) makes the writer sleep that many
seconds between writing the temporary file of ``NAME`` and renaming it, so
a test can kill the process in the middle of that save deterministically.
It has no other effect.
"""
import builtins
import glob
import os
import os.path as osp
import re
import time
import uuid
from pathlib import Path
from typing import List, Optional, Union

from mmengine.fileio.backends import LocalBackend

__all__ = [
    'TMP_SUFFIX', 'atomic_write', 'AtomicTextFile', 'AtomicLocalBackend',
    'install', 'remove_stale_temp_files', 'find_latest_checkpoint'
]

TMP_SUFFIX = '.sctnet-tmp'
SLOW_SAVE_ENV = 'SCTNET_TEST_SLOW_SAVE'
_TMP_RE = re.compile(r'^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{12}' +
                     re.escape(TMP_SUFFIX) + '$')


def _tmp_path(path: str) -> str:
    d, name = osp.split(osp.abspath(path))
    token = uuid.uuid4().hex[:12]
    return osp.join(d, f'.{name}.{os.getpid()}.{token}{TMP_SUFFIX}')


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. not permitted on this platform / filesystem
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _test_delay(path: str) -> None:
    spec = os.environ.get(SLOW_SAVE_ENV)
    if spec:
        name, _, seconds = spec.rpartition(':')
        if osp.basename(path) == name:
            time.sleep(float(seconds))


def atomic_write(path: Union[str, Path],
                 data: Union[bytes, str],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partial.

    The data goes to a temporary file in the same directory (created with
    the usual permissions, i.e. ``0o666 & ~umask``), which is flushed,
    ``fsync``-ed and renamed onto ``path`` with :func:`os.replace`; the
    directory is ``fsync``-ed afterwards so the rename survives a power
    loss. On any error the temporary file is removed and ``path`` keeps its
    previous content.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _test_delay(path)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


class AtomicTextFile:
    """A writable text file object that appears at ``path`` on close only.

    Used as ``with AtomicTextFile(path) as f: f.write(...)``. If the block
    raises, nothing is written.
    """

    def __init__(self, path, mode: str = 'w', encoding: Optional[str] = None):
        if mode not in ('w', 'wt'):
            raise ValueError(f'AtomicTextFile supports mode "w", not {mode!r}')
        self.path = os.fspath(path)
        self.encoding = encoding or 'utf-8'
        self._parts: List[str] = []
        self.closed = False

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            atomic_write(self.path, ''.join(self._parts), self.encoding)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.closed = True  # drop the partial content
        return False


class AtomicLocalBackend(LocalBackend):
    """MMEngine's ``LocalBackend`` with atomic ``put``/``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj, encoding)


def _checkpoint_hook_open(file, mode='r', *args, **kwargs):
    """``open`` as seen by ``mmengine.hooks.checkpoint_hook``.

    The only file that module opens itself is ``last_checkpoint``; writing
    it goes through :class:`AtomicTextFile`.
    """
    if mode in ('w', 'wt') and osp.basename(os.fspath(file)) == \
            'last_checkpoint':
        return AtomicTextFile(file, mode, kwargs.get('encoding'))
    return builtins.open(file, mode, *args, **kwargs)


class _DeferredRemoval:
    """Proxy of a file backend whose ``remove``/``rmtree`` wait for
    :meth:`flush` (called once the new checkpoint is safely written)."""

    def __init__(self, backend):
        self._backend = backend
        self._pending = []

    def remove(self, path):
        self._pending.append(('remove', path))

    def rmtree(self, path):
        self._pending.append(('rmtree', path))

    def flush(self):
        for op, path in self._pending:
            getattr(self._backend, op)(path)
        self._pending = []

    def __getattr__(self, name):
        return getattr(self._backend, name)


def _wrap_save_checkpoint_with_step(orig):

    def _save_checkpoint_with_step(self, runner, step, meta):
        backend = self.file_backend
        proxy = _DeferredRemoval(backend)
        self.file_backend = proxy
        try:
            orig(self, runner, step, meta)
        finally:
            self.file_backend = backend
        proxy.flush()  # only reached when the new checkpoint is written

    _save_checkpoint_with_step._sctnet_atomic = True
    _save_checkpoint_with_step.__wrapped__ = orig
    return _save_checkpoint_with_step


_CKPT_RE = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def find_latest_checkpoint(path: str) -> Optional[str]:
    """MMEngine's ``find_latest_checkpoint`` that survives a bad pointer.

    Reads ``path/last_checkpoint``; when that file is missing, empty or
    names a checkpoint that no longer exists, returns the newest
    ``iter_N.pth`` / ``epoch_N.pth`` in ``path`` instead (or None).
    """
    from mmengine.logging import print_log
    save_file = osp.join(path, 'last_checkpoint')
    last_saved = None
    if osp.exists(save_file):
        with builtins.open(save_file) as f:
            last_saved = f.read().strip() or None
    if last_saved is not None and ('://' in last_saved
                                   or osp.isfile(last_saved)):
        return last_saved
    found = []
    for name in os.listdir(path) if osp.isdir(path) else []:
        m = _CKPT_RE.match(name)
        if m:
            found.append((int(m.group(2)), osp.join(path, name)))
    if not found:
        if last_saved is not None:
            print_log(
                f'{save_file} names {last_saved}, which does not exist, and '
                f'there is no iter_*.pth / epoch_*.pth in {path}: nothing to '
                'resume from.',
                logger='current',
                level=30)
        else:
            print_log(
                'Did not find last_checkpoint to be resumed.',
                logger='current')
        return None
    latest = max(found)[1]
    print_log(
        f'{save_file} ' + (f'names {last_saved}, which does not exist'
                           if last_saved else 'is missing or empty') +
        f'; resuming from the newest checkpoint in the folder, {latest}.',
        logger='current',
        level=30)
    return latest


def remove_stale_temp_files(directory: str) -> List[str]:
    """Delete temporary files left by killed atomic writes in ``directory``.

    Only files named by :func:`atomic_write` whose writing process is not
    running any more are removed. Returns the removed paths.
    """
    removed = []
    for path in glob.glob(osp.join(glob.escape(directory), '.*' + TMP_SUFFIX)):
        m = _TMP_RE.match(osp.basename(path))
        if not m:
            continue
        pid = int(m.group('pid'))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def install() -> None:
    """Route MMEngine's local writes through :func:`atomic_write`.

    Idempotent. Registers :class:`AtomicLocalBackend` as the ``'local'``
    backend and for prefix-less paths, drops cached instances of the old
    class, and patches ``CheckpointHook`` and ``find_latest_checkpoint`` as
    described in the module docstring.
    """
    from mmengine.fileio import io as fileio_io
    from mmengine.fileio.backends import backends, register_backend
    if backends.get('local') is not AtomicLocalBackend:
        register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, inst in list(fileio_io.backend_instances.items()):
        if type(inst) is LocalBackend:
            del fileio_io.backend_instances[key]

    from mmengine.hooks import checkpoint_hook
    checkpoint_hook.open = _checkpoint_hook_open
    hook_cls = checkpoint_hook.CheckpointHook
    if not getattr(hook_cls._save_checkpoint_with_step, '_sctnet_atomic',
                   False):
        hook_cls._save_checkpoint_with_step = _wrap_save_checkpoint_with_step(
            hook_cls._save_checkpoint_with_step)

    import mmengine.runner.checkpoint as ckpt_mod
    import mmengine.runner.runner as runner_mod
    runner_mod.find_latest_checkpoint = find_latest_checkpoint
    ckpt_mod.find_latest_checkpoint = find_latest_checkpoint
