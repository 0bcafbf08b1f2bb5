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
import re
import struct
import zipfile
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .checksum import file_sha256, name_hash_mismatch
from .errors import (CheckpointFileError, CheckpointIncompleteError,
                     CheckpointNotFoundError, NotACheckpointError,
                     UnsafeCheckpointError)

__all__ = [
    'UnsafeCheckpointError', 'register_safe_globals', 'safe_torch_load',
    'read_checkpoint', 'SAFE_GLOBAL_NAMES', 'checkpoint_not_found'
]

SAFE_GLOBAL_NAMES = []  # filled by register_safe_globals, for docs/tests
_REGISTERED = False


def _history_buffer_getattr(obj, name, *default):
    """Stand-in for ``builtins.getattr`` inside the restricted unpickler.

    MMEngine's ``HistoryBuffer`` pickles its statistics methods (``mean``,
    ``min``, ...) as ``getattr(HistoryBuffer, 'mean')``. Only that exact
    pattern is resolved; anything else raises.
    """
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
    affects ``weights_only=True`` loading; its ``(object, name)`` pairs (the
    restricted ``getattr``, NumPy's two module names) need torch >= 2.6.
    """
    global _REGISTERED
    if _REGISTERED:
        return
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
    text = str(err)
    m = re.search(r'GLOBAL ([\w.]+)', text)
    if m:  # recent torch releases name builtins without the module
        name = m.group(1) if '.' in m.group(1) else f'builtins.{m.group(1)}'
        return f'the file references {name}'
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


def checkpoint_not_found(filename: str,
                         what: str = 'Checkpoint file',
                         fix: str = '') -> CheckpointNotFoundError:
    """The error for a checkpoint path that does not exist; ``fix`` (what
    to do) replaces the generic advice."""
    return CheckpointNotFoundError(
        f'{what} not found: {filename!s} (resolved to '
        f'{osp.abspath(osp.expanduser(str(filename)))}, current directory '
        f'{os.getcwd()}). ' +
        (fix or 'Check the path; relative paths are resolved from the '
         'current directory. Official checkpoints are listed in the README '
         'model zoo; your own are in work_dirs/<config>/iter_*.pth.'))


def read_checkpoint(filename: str,
                    what: str = 'Checkpoint file',
                    fix: str = '',
                    log_checksum: bool = True) -> dict:
    """Read a checkpoint named by a path or URL: the project's one reader.

    Local paths go straight to :func:`safe_torch_load`; ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``... go through MMEngine's
    ``CheckpointLoader``, whose loaders for every scheme are this project's
    safe ones (:mod:`.checkpoint_schemes`). ``what`` names the file in the
    messages (e.g. ``'Teacher checkpoint'``) and ``fix`` says what to do
    when it does not exist; ``log_checksum=False`` leaves the SHA-256 of
    a local file out of the log (a file just written).

    Raises:
        CheckpointFileError: missing, incomplete, not a checkpoint, unsafe
            (see :func:`safe_torch_load`); also when the file holds no dict.
    """
    filename = str(filename)
    if '://' in filename:
        ckpt = CheckpointLoader.load_checkpoint(
            filename, map_location='cpu', logger='current')
    else:
        path = osp.expanduser(filename)
        if not osp.exists(path):
            raise checkpoint_not_found(filename, what, fix)
        ckpt = safe_torch_load(path, map_location='cpu',
                               log_checksum=log_checksum)
    if not isinstance(ckpt, dict):
        raise NotACheckpointError(
            f'{what} {filename} holds a {type(ckpt).__name__}, not a '
            'checkpoint dict (torch.save of a state dict or of '
            "{'state_dict': ..., 'meta': ...}). " + fix)
    return ckpt


def _log_checksum(path: str, log: bool) -> None:
    digest = file_sha256(path)
    if log:
        size = os.path.getsize(path) / 2**20
        print_log(
            f'Loading checkpoint {path} ({size:.1f} MiB, sha256 {digest})',
            logger='current')
    warning = name_hash_mismatch(path, digest)
    if warning:
        print_log(warning, logger='current', level=30)


_FIX_REDOWNLOAD = (
    'Download or copy it again (compare its size and SHA-256 with the '
    "source's; official files are listed in the README model zoo), or use "
    'another checkpoint, e.g. the previous iter_*.pth of your run.')


def _looks_like(head: bytes, size: int) -> Tuple[str, str]:
    """(what a non-checkpoint file looks like, what to do) from its first
    bytes."""
    low = head.lstrip().lower()
    if low.startswith((b'<!doctype html', b'<html', b'<head', b'<?xml')) or \
            b'<html' in low[:512]:
        return ('an HTML/XML page (e.g. an error, login or redirect page '
                'saved instead of the file)',
                'download the file itself, e.g. curl -L -o FILE URL or wget '
                'URL, from the link in the README model zoo')
    if head.startswith(b'version https://git-lfs'):
        return ('a Git LFS pointer (the real file was never fetched)',
                'run git lfs pull in that repository, or download the file')
    if head.startswith(b'\x08') and (b'pytorch' in head[:128]
                                     or b'onnx' in head[:128].lower()):
        return ('an ONNX model',
                'ONNX files run with onnxruntime (docs/deploy.md); pass the '
                '.pth checkpoint it was exported from here')
    images = {
        b'\x89PNG': 'a PNG image',
        b'\xff\xd8\xff': 'a JPEG image',
        b'GIF8': 'a GIF image',
        b'RIFF': 'a RIFF (WebP/AVI/WAV) file',
    }
    for magic, what in images.items():
        if head.startswith(magic):
            return (what, 'check the order of the arguments: the checkpoint '
                    'is a .pth file')
    others = {
        b'\x1f\x8b': ('a gzip archive', 'extract it first (tar -xzf / '
                      'gunzip) and pass the .pth inside'),
        b'\x93NUMPY': ('a NumPy .npy array', 'pass a PyTorch .pth checkpoint'),
        b'\x89HDF':
        ('an HDF5 (Keras/TensorFlow) file', 'pass a PyTorch .pth checkpoint'),
        b'PK\x03\x04': ('a zip archive that is not a PyTorch checkpoint',
                        'extract it and pass the .pth inside'),
    }
    for magic, found in others.items():
        if head.startswith(magic):
            return found
    if len(head) >= 10 and head[8:10] == b'{"':
        return ('a safetensors file', 'convert it to a PyTorch state dict '
                '(safetensors.torch.load_file + torch.save)')
    if head.startswith(b'\x80') and len(head) > 1 and 2 <= head[1] <= 5:
        return ('a Python pickle that is not a PyTorch checkpoint',
                'pass a file written by torch.save')
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in '\r\n\t'
                                for c in text):
        start = ' '.join(text.split())[:40]
        return (f'a text file (it starts with {start!r})',
                'pass the .pth checkpoint file')
    return (f'unrecognised binary content (first bytes {head[:8].hex()})',
            'pass a file written by torch.save (a .pth checkpoint)')


def _is_pickle(head: bytes) -> bool:
    return head.startswith(b'\x80') and len(head) > 1 and 2 <= head[1] <= 5


def _zip_state(source) -> Tuple[Optional[bool], List[str]]:
    """(complete, entry names) of a zip file; complete is False when the
    end-of-archive record (written last) is missing."""
    try:
        with zipfile.ZipFile(source) as z:
            return True, z.namelist()
    except zipfile.BadZipFile:
        return False, []
    except Exception:  # noqa: BLE001  (unreadable for another reason)
        return None, []


def _diagnose(source, name: str, size: int, err: BaseException):
    """The user error for a file ``torch.load`` could not read, or None
    (an unexpected failure: re-raise it)."""
    try:
        if hasattr(source, 'seek'):
            source.seek(0)
            head = source.read(1024)
            source.seek(0)
        else:
            with open(source, 'rb') as f:
                head = f.read(1024)
    except OSError:
        return None
    sha = ''
    if isinstance(source, str):
        sha = f', sha256 {file_sha256(source)}'
    msg = str(err)
    if size == 0:
        return NotACheckpointError(
            f'{name} is empty (0 bytes), not a PyTorch checkpoint: the '
            'download, copy or save that made it did not finish or failed. ' +
            _FIX_REDOWNLOAD)
    if head.startswith(b'PK\x03\x04'):
        complete, names = _zip_state(source)
        if complete is False:
            return CheckpointIncompleteError(
                f'{name} is incomplete ({size} bytes{sha}): a PyTorch '
                'checkpoint cut short (its zip archive has no closing '
                'directory), e.g. by an interrupted download or copy or by '
                'a process killed while writing it. ' + _FIX_REDOWNLOAD)
        if complete and not any(n == 'data.pkl' or n.endswith('/data.pkl')
                                for n in names):
            shown = ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')
            entries = f'{len(names)} entr' + ('y'
                                              if len(names) == 1 else 'ies')
            return NotACheckpointError(
                f'{name} is a zip archive ({entries}: {shown}), '
                'not a PyTorch checkpoint (no data.pkl): extract it and pass '
                'the .pth inside.')
        if not isinstance(err, _DATA_ERRORS):
            return None  # e.g. an AttributeError: a bug, not the file
        return CheckpointIncompleteError(
            f'{name} is a damaged PyTorch checkpoint ({size} bytes{sha}): '
            f'{_first_line(msg)}. ' + _FIX_REDOWNLOAD)
    if _is_pickle(head) and 'Unsupported operand' not in msg and \
            'magic number' not in msg:
        if not isinstance(err, _DATA_ERRORS + (KeyError, IndexError)):
            return None
        eof = isinstance(err, (EOFError, struct.error)) or any(
            w in msg for w in ('EOF', 'truncated', 'Ran out of input'))
        if eof:
            return CheckpointIncompleteError(
                f'{name} is incomplete ({size} bytes{sha}): a PyTorch '
                'checkpoint (legacy format) that ends in the middle of its '
                'data, e.g. cut short by an interrupted download or copy or '
                'by a process killed while writing it. ' + _FIX_REDOWNLOAD)
        return CheckpointIncompleteError(
            f'{name} is a damaged PyTorch checkpoint ({size} bytes{sha}): '
            f'{_first_line(msg)}. ' + _FIX_REDOWNLOAD)
    what, fix = _looks_like(head, size)
    return NotACheckpointError(
        f'{name} is not a PyTorch checkpoint: it looks like {what} '
        f'({size} bytes). What to do: {fix}.')


#: what reading damaged bytes raises (other types are bugs, re-raised)
_DATA_ERRORS = (RuntimeError, OSError, EOFError, ValueError, struct.error,
                pickle.UnpicklingError)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else 'unreadable').rstrip('.')


def _is_refusal(err: BaseException) -> bool:
    """True when the restricted unpickler refused an object (as opposed to
    bytes that are no pickle at all)."""
    if isinstance(err, UnsafeCheckpointError):
        return True
    msg = str(err)
    return 'Unsupported global' in msg or 'GLOBAL ' in msg or \
        'only HistoryBuffer' in msg


def _size(source) -> int:
    if isinstance(source, str):
        return os.path.getsize(source)
    try:
        pos = source.tell()
        source.seek(0, os.SEEK_END)
        end = source.tell()
        source.seek(pos)
        return end
    except (AttributeError, OSError, ValueError):
        return -1


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

    Every failure is a :class:`~.errors.CheckpointFileError` whose
    message names the file, says what is wrong and what to do:

    Raises:
        CheckpointNotFoundError: the path does not exist or cannot be read
            (a ``FileNotFoundError``).
        CheckpointIncompleteError: a PyTorch checkpoint cut short (a zip
            without its closing directory, a legacy pickle ending early) or
            damaged (a ``RuntimeError``); the size and SHA-256 are given.
        NotACheckpointError: not a PyTorch checkpoint at all: empty, a
            folder, text, an HTML page, a Git LFS pointer, an ONNX model, an
            image, another archive... (a ``ValueError``); says which.
        UnsafeCheckpointError: the file needs objects outside the
            allow-list (an ``UnpicklingError``).
    """
    register_safe_globals()
    name = filename if isinstance(filename, (str, os.PathLike)) else getattr(
        filename, 'name', '<stream>')
    if isinstance(filename, (str, os.PathLike)):
        filename = osp.expanduser(os.fspath(filename))
        if osp.isdir(filename):
            raise NotACheckpointError(
                f'{filename} is a folder, not a checkpoint file: pass the '
                '.pth file inside it (e.g. ' +
                osp.join(filename, 'iter_N.pth') + ').')
        if not osp.isfile(filename):
            raise checkpoint_not_found(filename)
        try:
            _log_checksum(filename, log_checksum)
        except PermissionError:
            raise CheckpointNotFoundError(
                f'{filename} cannot be read (permission denied): fix its '
                'permissions (chmod u+r) or copy it somewhere readable.'
            ) from None
    try:
        # weights_only=True is explicit, so no environment variable
        # (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) can turn the protection off
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (diagnosed below)
        if isinstance(err, CheckpointFileError):
            raise
        if _is_refusal(err):
            raise _explain(str(name), err) from None
        diagnosis = _diagnose(filename, str(name), _size(filename), err)
        if diagnosis is None:
            raise
        raise diagnosis from None
