"""Crash-safe (atomic) file writes: the project's one writer.

Checkpoints, their pointer file, converted and exported files, JSON
reports and PNGs all go through :func:`atomic_write`.

A training run can be killed at any moment (``kill -9``, a pre-empted
cluster job, a full node). MMEngine's ``LocalBackend`` writes a checkpoint
by opening the final path and streaming bytes into it, so a kill during a
save leaves a truncated ``iter_N.pth``.

* :func:`atomic_write` writes a temporary file in the *same* directory,
  ``fsync``-s it, renames it onto the final name with :func:`os.replace`
  and ``fsync``-s the directory: a reader sees either the old file or the
  complete new one, never a partial file.
* :class:`AtomicLocalBackend` is MMEngine's ``LocalBackend`` with
  ``put``/``put_text`` going through :func:`atomic_write`. It is registered
  in MMEngine's file-backend registry under its own name, ``'atomic_local'``
  (``backend_args=dict(backend='atomic_local')``); MMEngine's ``'local'``
  backend is left as it is. :class:`mmseg_sctnet.engine.AtomicCheckpointHook`
  (the ``default_hooks.checkpoint`` of every SCTNet config) selects it.

Temporary files are named ``.<name>.<pid>.<token>.sctnet-tmp``; a killed
save can leave one behind, :func:`remove_stale_temp_files` deletes those of
processes that are no longer running (done when training starts).

For tests only: the environment variable ``SCTNET_TEST_SLOW_SAVE`` set to
``NAME:SECONDS`` (e.g. ``iter_4.pth:30``; ``NAME`` may be a shell pattern
such as ``iter_*.pth``) makes the writer sleep that many seconds between
writing the temporary file of a matching file and renaming it, so a test
can kill or signal the process in the middle of that save
deterministically. It has no other effect.
"""
import fnmatch
import glob
import os
import os.path as osp
import re
import time
import uuid
from pathlib import Path
from typing import List, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend

__all__ = [
    'TMP_SUFFIX', 'ATOMIC_BACKEND', 'atomic_write', 'AtomicLocalBackend',
    'remove_stale_temp_files'
]

TMP_SUFFIX = '.sctnet-tmp'
#: name of :class:`AtomicLocalBackend` in MMEngine's file-backend registry
ATOMIC_BACKEND = 'atomic_local'
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
        if fnmatch.fnmatchcase(osp.basename(path), name):
            time.sleep(float(seconds))


def atomic_write(path: Union[str, Path],
                 data: Union[bytes, str],
                 encoding: str = 'utf-8',
                 overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partial.

    The data goes to a temporary file in the same directory (created with
    the usual permissions, i.e. ``0o666 & ~umask``), which is flushed and
    ``fsync``-ed, then

    * ``overwrite=True``: renamed onto ``path`` with :func:`os.replace`
      (an existing file is replaced in one step);
    * ``overwrite=False``: hard-linked to ``path``, which never replaces a
      file, even one that appeared meanwhile (:class:`FileExistsError`);
      on a filesystem without hard links it is renamed when ``path`` is
      still absent.

    The directory is ``fsync``-ed afterwards so the new name survives a
    power loss. On any error the temporary file is removed and ``path``
    keeps its previous content (or stays absent).
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
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links
                if osp.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    finally:
        if osp.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_dir(directory)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's ``LocalBackend`` with atomic ``put``/``put_text``.

    Registered as ``'atomic_local'`` without a URI prefix, so it is used
    only where ``backend_args=dict(backend='atomic_local')`` asks for it.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj, encoding)


def remove_stale_temp_files(directory: str,
                            name: Optional[str] = None) -> List[str]:
    """Delete temporary files left by killed atomic writes in ``directory``
    (only those of the file ``name`` when given).

    Only files named by :func:`atomic_write` whose writing process is not
    running any more are removed. Returns the removed paths.
    """
    removed = []
    pattern = '.' + (glob.escape(name) + '.' if name else '') + '*' + \
        TMP_SUFFIX
    for path in glob.glob(osp.join(glob.escape(directory), pattern)):
        m = _TMP_RE.match(osp.basename(path))
        if not m or (name is not None and m.group('name') != name):
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
