"""Checkpoint loading that never executes code from the file.

Every checkpoint this project reads (``init_model``, ``load_from``,
``--resume``, teacher and pretrained-backbone files, ``pth_convert``,
export) goes through :func:`torch.load` with ``weights_only=True``: the
restricted unpickler builds tensors, containers and plain Python values
only. MMEngine and official mmcv-0.x (SCTNet release) checkpoints also hold
a handful of other objects; exactly those are allow-listed here:

* ``mmengine.logging.HistoryBuffer`` (the message hub's scalar history) and
  the statistics methods it pickles through ``builtins.getattr``. The
  ``getattr`` registered under that name is :func:`_history_buffer_getattr`,
  which resolves nothing but ``HistoryBuffer.<registered statistic>``;
  the real :func:`getattr` is never exposed to the unpickler.
* NumPy arrays, dtypes and scalars (``meta`` and message-hub values).

A file that references anything else (a pickled callable such as
``os.system``) is refused with :class:`UnsafeCheckpointError` before any of
it runs. There is deliberately no switch that turns this off.
"""
import os
import os.path as osp
import pickle
from typing import Any, Optional

import numpy as np
import torch

from .checksum import file_sha256, name_hash_mismatch
from .errors import CheckpointNotFoundError, UnsafeCheckpointError

__all__ = [
    'UnsafeCheckpointError', 'register_safe_globals', 'safe_torch_load',
    'SAFE_GLOBAL_NAMES', 'checkpoint_not_found'
]

SAFE_GLOBAL_NAMES = []  # filled by register_safe_globals, for docs/tests
_REGISTERED = False


def _history_buffer_getattr(obj, name, *default):
    """Stand-in for ``builtins.getattr`` inside the restricted unpickler.

    MMEngine's ``HistoryBuffer`` pickles its statistics methods (``mean``,
    ``min``, ...) as ``getattr(HistoryBuffer, 'mean')``. Only that exact
    pattern is resolved; anything else raises.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and not default:
        methods = HistoryBuffer._statistics_methods
        if name in methods or name in ('min', 'max', 'current', 'mean'):
            return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only '
        'HistoryBuffer statistics methods are allowed')


def _numpy_globals():
    out = []
    try:  # numpy >= 2
        from numpy._core import multiarray as ma
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as ma
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out.append((ma._reconstruct, f'{mod}._reconstruct'))
        out.append((ma.scalar, f'{mod}.scalar'))
    out += [np.ndarray, np.dtype]
    # dtype classes (numpy >= 1.25 pickles e.g. numpy.dtypes.Float64DType)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and name.endswith('DType'):
                out.append((obj, f'numpy.dtypes.{name}'))
    return out


def register_safe_globals() -> None:
    """Allow-list the non-tensor objects of MMEngine / mmcv-0.x checkpoints.

    Idempotent. Uses :func:`torch.serialization.add_safe_globals`, which only
    affects ``weights_only=True`` loading.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    from mmengine.logging import HistoryBuffer
    entries = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]
    entries += _numpy_globals()
    torch.serialization.add_safe_globals(entries)
    for e in entries:
        if isinstance(e, tuple):
            SAFE_GLOBAL_NAMES.append(e[1])
        else:
            SAFE_GLOBAL_NAMES.append(f'{e.__module__}.{e.__qualname__}')
    _REGISTERED = True


def _refusal_reason(err: Exception) -> str:
    """What the file asked for, without torch's advice to allow-list it."""
    import re
    text = str(err)
    m = re.search(r'GLOBAL ([\w.]+)', text)
    if m:
        return f'the file references {m.group(1)}'
    for ln in text.splitlines():
        if 'only HistoryBuffer' in ln:
            return ln.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


def _explain(filename: str, err: Exception) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refused to load checkpoint {filename}: it asks to run Python code '
        f'while loading ({_refusal_reason(err)}). A checkpoint only needs '
        'tensors, containers, numbers, strings, numpy values and MMEngine '
        'logging buffers; anything else (a pickled function or class) can '
        'run arbitrary code on this machine, so loading was stopped: '
        'nothing in it was executed. What to do: get the checkpoint '
        'from its official source (README model zoo) or ask its author for '
        'a weights-only file (tools/publish_model.py writes one). Only if you '
        'made this file yourself and trust it: in a separate Python session '
        'run ckpt = torch.load(path, weights_only=False) and '
        "torch.save({'state_dict': ckpt['state_dict']}, new_path), then use "
        'new_path.')


def checkpoint_not_found(
        filename: str,
        what: str = 'Checkpoint file') -> CheckpointNotFoundError:
    """The error for a checkpoint path that does not exist."""
    return CheckpointNotFoundError(
        f'{what} not found: {filename!s} (resolved to '
        f'{osp.abspath(osp.expanduser(str(filename)))}, current directory '
        f'{os.getcwd()}). Check the path; relative paths are resolved from '
        'the current directory. Official checkpoints are listed in the '
        'README model zoo; your own are in work_dirs/<config>/iter_*.pth.')


def _log_checksum(path: str, log: bool) -> None:
    from mmengine.logging import print_log
    digest = file_sha256(path)
    if log:
        size = os.path.getsize(path) / 2**20
        print_log(
            f'Loading checkpoint {path} ({size:.1f} MiB, sha256 {digest})',
            logger='current')
    warning = name_hash_mismatch(path, digest)
    if warning:
        print_log(warning, logger='current', level=30)


def safe_torch_load(filename: Any,
                    map_location: Optional[Any] = 'cpu',
                    log_checksum: bool = True) -> Any:
    """``torch.load(filename, weights_only=True)`` with readable errors.

    For a path, the file's SHA-256 is logged (cached by path, size and
    mtime) and compared with a ``-<sha8>.pth`` suffix of its name.

    Args:
        filename: a path or a file-like object.
        map_location: as in :func:`torch.load`.
        log_checksum: log the SHA-256 of a path (a mismatch with the name is
            reported either way).

    Raises:
        CheckpointNotFoundError: the path does not exist (a
            ``FileNotFoundError``; the message names it).
        UnsafeCheckpointError: the file needs objects outside the allow-list.
    """
    register_safe_globals()
    name = filename if isinstance(filename, (str, os.PathLike)) else getattr(
        filename, 'name', '<stream>')
    if isinstance(filename, (str, os.PathLike)):
        filename = osp.expanduser(os.fspath(filename))
        if not osp.isfile(filename):
            raise checkpoint_not_found(filename)
        _log_checksum(filename, log_checksum)
    try:
        # weights_only=True is explicit, so no environment variable
        # (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) can turn the protection off
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if isinstance(err, UnsafeCheckpointError):
            raise
        raise _explain(str(name), err) from None
    except (RuntimeError, AttributeError, TypeError) as err:
        # the restricted unpickler reports some refusals as these types
        msg = str(err)
        if 'weights_only' in msg or 'Unsupported global' in msg:
            raise _explain(str(name), err) from None
        raise
