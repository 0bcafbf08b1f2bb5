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

__all__ = [
    'UnsafeCheckpointError', 'register_safe_globals', 'safe_torch_load',
    'SAFE_GLOBAL_NAMES'
]

SAFE_GLOBAL_NAMES = []  # filled by register_safe_globals, for docs/tests
_REGISTERED = False


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint references objects outside the allow-list."""


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


def _explain(filename: str, err: Exception) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refused to load checkpoint {filename!r}: it contains Python objects '
        'outside the allow-list of tensors, containers, numbers, strings, '
        f'numpy values and MMEngine logging buffers ({err}). Loading it would '
        'let the file run code on this machine, so nothing in it was executed. '
        'If you produced this file yourself and trust it, load it once in a '
        'separate Python session with torch.load(path, weights_only=False), '
        "keep only the weights (torch.save({'state_dict': ckpt['state_dict']}, "
        "new_path)) and use the new file; tools/publish_model.py does this for "
        'checkpoints that load here. Otherwise ask its author for a clean '
        'checkpoint.')


def safe_torch_load(filename: Any,
                    map_location: Optional[Any] = 'cpu') -> Any:
    """``torch.load(filename, weights_only=True)`` with readable errors.

    Args:
        filename: a path or a file-like object.
        map_location: as in :func:`torch.load`.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        UnsafeCheckpointError: the file needs objects outside the allow-list.
    """
    register_safe_globals()
    name = filename if isinstance(filename, (str, os.PathLike)) else getattr(
        filename, 'name', '<stream>')
    if isinstance(filename, (str, os.PathLike)) and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename!s}')
    try:
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
