"""Input and output files: checks before the work starts, atomic writes.

A tool checks what it was given before the expensive work starts, and it
never writes over one of its inputs, whatever the flags (``--force`` only
allows replacing an earlier *output*):

* :func:`check_input_file`: exists, is a file, is not empty.
* :func:`check_output_file`: not a folder, not one of the inputs (the
  same path, a symbolic link to it or a hard link of it: :func:`same_file`),
  not an existing file unless ``overwrite``, and its folder can be written
  (probed with a temporary file, which also works for root).
* :func:`check_output_dir`: the same for an output folder.
* :func:`write_file`: the bytes appear at the path complete or not at all
  (a temporary file in the same folder, then a rename; without
  ``overwrite`` a hard link, which never replaces an existing file).
* :func:`check_output_folder`: an output folder that is no input and does
  not lie inside an input folder; :func:`check_planned_outputs`: the files
  a run will write; :func:`check_config_dump`: the config is not the file
  a run writes its copy of the config to.
* :func:`write_json`, :func:`torch_bytes`: what :func:`write_file` writes
  most often.

Checkpoints are read by :func:`mmseg_sctnet.io.checkpoint.read_checkpoint`
and configs by :func:`mmseg_sctnet.io.config.load_config`.

Every refusal is a :class:`~mmseg_sctnet.io.errors.PathError` whose
message names the path and the fix; the tools print it as one ``error:``
line (:func:`~mmseg_sctnet.io.errors.exit_on_user_error`).
"""
import io
import json
import os
import os.path as osp
import uuid
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np
import torch

from .atomic import atomic_write, remove_stale_temp_files
from .checkpoint import checkpoint_not_found
from .errors import PathError

__all__ = [
    'same_file', 'is_inside', 'check_input_file', 'check_output_file',
    'check_output_dir', 'check_output_folder', 'check_planned_outputs',
    'check_config_dump', 'write_file', 'write_json', 'write_png',
    'torch_bytes'
]


def same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one file: the same path, a symbolic
    link to it (at any level) or a hard link of it."""
    try:
        return osp.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return osp.realpath(a) == osp.realpath(b)


def _how_same(out: str, inp: str) -> str:
    if osp.abspath(out) == osp.abspath(inp):
        return 'the same path'
    if osp.realpath(out) == osp.realpath(inp):
        return 'the same file through a symbolic link'
    return 'a hard link of it'


def check_input_file(path: str, what: str = 'input file') -> str:
    """Raise :class:`PathError` unless ``path`` is a readable, non-empty
    file. Returns ``path``."""
    path = os.fspath(path)
    if not osp.exists(path):
        if osp.islink(path):
            raise PathError(
                f'{what} {path} is a broken symbolic link (to '
                f'{os.readlink(path)}). Point it at the real file.')
        if 'checkpoint' in what:
            raise checkpoint_not_found(path, what=what[:1].upper() + what[1:])
        raise PathError(f'{what} not found: {path} (resolved to '
                        f'{osp.abspath(path)}, current directory '
                        f'{os.getcwd()}). Check the path.')
    if osp.isdir(path):
        raise PathError(f'{what} {path} is a folder; give the file itself.')
    try:
        with open(path, 'rb') as f:
            empty = not f.read(1)
    except OSError as e:
        raise PathError(f'cannot read {what} {path}: {e.strerror}.') from None
    if empty:
        raise PathError(
            f'{what} {path} is empty (0 bytes): an interrupted download or '
            'copy? Get the file again.')
    return path


def _nearest_existing(path: str) -> str:
    path = osp.abspath(path)
    while not osp.exists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _probe_writable(directory: str, target: str, what: str) -> None:
    """Create and delete a temporary file in ``directory`` (or in its
    nearest existing ancestor, which must be a folder)."""
    base = _nearest_existing(directory)
    if not osp.isdir(base):
        raise PathError(f'cannot write {what} {target}: {base} is a file, '
                        'not a folder.')
    probe = osp.join(base, f'.sctnet-probe.{os.getpid()}.'
                     f'{uuid.uuid4().hex[:12]}')
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise PathError(f'cannot write {what} {target}: folder {base} is '
                        f'not writable ({e.strerror}). Choose another '
                        'place.') from None
    os.close(fd)
    os.unlink(probe)


def _refuse_inputs(path: str, inputs: Iterable[str], what: str) -> None:
    for inp in inputs:
        if inp and same_file(path, inp):
            raise PathError(
                f'{what} {path} is the input {inp} ({_how_same(path, inp)}); '
                'a tool never writes over its input, with or without '
                f'--force. Choose another {what}.')


def check_output_file(path: str,
                      inputs: Sequence[str] = (),
                      overwrite: bool = False,
                      what: str = 'output',
                      exists_hint: Optional[str] = None) -> str:
    """Raise :class:`PathError` unless ``path`` can be written.

    Args:
        inputs: files the tool reads; ``path`` must not be one of them.
        overwrite: an existing (non-input) file may be replaced.
        exists_hint: the fix named when ``path`` exists (default: pass
            ``--force``).

    Returns ``path``.
    """
    path = os.fspath(path)
    if not path:
        raise PathError(f'{what}: empty path.')
    if osp.isdir(path):
        raise PathError(f'{what} {path} is a folder; give a file name.')
    _refuse_inputs(path, inputs, what)
    if osp.lexists(path) and not overwrite:
        raise PathError(
            f'{what} {path} exists; ' +
            (exists_hint or 'pass --force to overwrite it.'))
    _probe_writable(osp.dirname(osp.abspath(path)), path, what)
    return path


def check_output_dir(path: str,
                     inputs: Sequence[str] = (),
                     what: str = 'output folder') -> str:
    """Raise :class:`PathError` unless files can be created in ``path``
    (created later if missing) and ``path`` is none of the ``inputs`` (files
    or folders). Returns ``path``."""
    path = os.fspath(path)
    if osp.exists(path) and not osp.isdir(path):
        raise PathError(f'{what} {path} is a file, not a folder.')
    _refuse_inputs(path, inputs, what)
    _probe_writable(path, path, what)
    return path


def is_inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (real paths)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_folder(path: Optional[str],
                        what: str,
                        inputs: Iterable[Optional[str]] = ()) -> None:
    """``path`` can be created and written, is none of ``inputs`` and does
    not lie inside an input folder (its files would mix with the inputs, or
    replace them). ``None`` passes."""
    if path is None:
        return
    inputs = [i for i in inputs if i and osp.exists(i)]
    check_output_dir(path, inputs, what)
    for inp in inputs:
        if osp.isdir(inp) and is_inside(path, inp):
            raise PathError(
                f'{what} {path} is inside the input folder {inp}; choose an '
                'output outside it (its files would mix with the inputs).')


def check_planned_outputs(outputs: Sequence[str],
                          inputs: Iterable[str],
                          force: bool = False,
                          what: str = '--out') -> None:
    """Files a run will write: never an input (whatever ``force``), and
    not already there unless ``force``."""
    inputs = [i for i in inputs if i and osp.exists(i)]
    for o in outputs:
        for i in inputs:
            if same_file(o, i):
                raise PathError(
                    f'output {o} would overwrite the input {i}; a tool never '
                    f'writes over its input, with or without --force. Choose '
                    f'another {what}.')
    existing = [o for o in outputs if osp.lexists(o)]
    if existing and not force:
        more = f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''
        raise PathError(
            f'{existing[0]} already exists{more}; pass --force to overwrite '
            f'the outputs of an earlier run or choose another {what}.')


def check_config_dump(work_dir: str, config: str) -> None:
    """MMEngine's Runner writes the run's config to ``work_dir/<config
    file name>``; refuse when that file *is* the config given."""
    dump = osp.join(work_dir, osp.basename(config))
    if osp.exists(dump) and same_file(dump, config):
        raise PathError(
            f'the config {config} lies in the work dir {work_dir}, where the '
            f'run writes its copy of the config under the same name '
            f'({dump}), replacing your file. Copy the config elsewhere or '
            'choose another --work-dir.')


def write_file(path: str,
               data: bytes,
               overwrite: bool = False,
               inputs: Sequence[str] = ()) -> None:
    """Write ``data`` so that ``path`` is complete or absent, never partial.

    :func:`~mmseg_sctnet.io.atomic.atomic_write`: a temporary file in the
    same folder renamed onto ``path`` (``overwrite``) or hard-linked to it
    (otherwise: an existing file is never replaced, even one that appeared
    meanwhile). ``path`` is re-checked against ``inputs`` right before
    writing, and temporary files of earlier, killed writes of ``path`` are
    removed.
    """
    path = os.fspath(path)
    _refuse_inputs(path, inputs, 'output')
    directory, name = osp.split(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temp_files(directory, name)
    try:
        atomic_write(path, data, overwrite=overwrite)
    except FileExistsError:
        raise PathError(f'{path} appeared while it was being written; '
                        'refusing to overwrite it.') from None


def write_json(path: str, data: Any, overwrite: bool = False,
               inputs: Sequence[str] = ()) -> None:
    """``data`` as indented JSON through :func:`write_file`."""
    write_file(path, (json.dumps(data, indent=2) + '\n').encode(),
               overwrite=overwrite, inputs=inputs)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` into memory (to pass to :func:`write_file`)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_png(path: str, array: np.ndarray) -> None:
    """``array`` (BGR or a label map) as a PNG through :func:`write_file`
    (replacing an earlier output): an interrupted run leaves no
    half-written image."""
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise PathError(f'could not encode {path} as PNG (array of shape '
                        f'{array.shape}, {array.dtype})')
    write_file(path, buf.tobytes(), overwrite=True)
