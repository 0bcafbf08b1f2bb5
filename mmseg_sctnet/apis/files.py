"""Checks and writes shared by the command-line tools.

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
* :func:`load_checkpoint_file`: :func:`~mmseg_sctnet.compat.safe_torch_load`
  (which tells an empty, truncated, non-checkpoint and unsafe file apart)
  behind the input check.
* :func:`load_config_file`: a config with one clear error when it is
  missing or does not parse.

Every refusal is a :class:`~mmseg_sctnet.compat.errors.UserError` whose
message names the path and the fix; the tools print it as one ``error:``
line (:func:`~mmseg_sctnet.compat.exit_on_user_error`).
"""
import io
import os
import os.path as osp
import uuid
from typing import Any, Iterable, Optional, Sequence

from mmseg_sctnet.compat.errors import UserError

__all__ = [
    'PathError', 'same_file', 'check_input_file', 'check_output_file',
    'check_output_dir', 'write_file', 'torch_bytes', 'load_checkpoint_file',
    'load_config_file'
]


class PathError(UserError, OSError):
    """An input that cannot be read or an output that cannot be written."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ''


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
            from mmseg_sctnet.compat.safe_load import checkpoint_not_found
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


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


TMP_SUFFIX = '.sctnet-tmp'


def _remove_stale_temps(path: str) -> None:
    """Delete the temporary files of earlier writes of ``path`` whose
    process is gone (a killed run), so a re-run leaves no litter."""
    import glob
    import re
    directory, name = osp.split(osp.abspath(path))
    pattern = re.compile(r'^\.' + re.escape(name) +
                         r'\.(\d+)\.[0-9a-f]{12}' + re.escape(TMP_SUFFIX) +
                         '$')
    for tmp in glob.glob(
            osp.join(glob.escape(directory), '.' + glob.escape(name) +
                     '.*' + TMP_SUFFIX)):
        m = pattern.match(osp.basename(tmp))
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # still running: not ours to delete
        except ProcessLookupError:
            pass
        except OSError:
            continue
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _test_delay(path: str) -> None:
    """For tests only: ``SCTNET_TEST_SLOW_SAVE=NAME:SECONDS`` sleeps between
    writing the temporary file of ``NAME`` and renaming it (the hook of
    :mod:`mmseg_sctnet.compat.atomic_io`), so a test can kill the writer
    in the middle of a write."""
    spec = os.environ.get('SCTNET_TEST_SLOW_SAVE')
    if spec:
        name, _, seconds = spec.rpartition(':')
        if osp.basename(path) == name:
            import time
            time.sleep(float(seconds))


def write_file(path: str,
               data: bytes,
               overwrite: bool = False,
               inputs: Sequence[str] = ()) -> None:
    """Write ``data`` so that ``path`` is complete or absent, never partial.

    The bytes go to a temporary file in the same folder (named like the
    files of :func:`mmseg_sctnet.compat.atomic_io.atomic_write`, so a killed
    write's leftover is recognised), which is ``fsync``-ed and then renamed
    onto ``path`` (``overwrite``) or hard-linked to it (otherwise: an
    existing file is never replaced, even one that appeared meanwhile).
    ``path`` is re-checked against ``inputs`` right before writing, and
    temporary files of earlier, killed writes of ``path`` are removed.
    """
    path = os.fspath(path)
    _refuse_inputs(path, inputs, 'output')
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temps(path)
    if overwrite:
        from mmseg_sctnet.compat.atomic_io import atomic_write
        atomic_write(path, data)
        return
    tmp = osp.join(
        directory, f'.{osp.basename(path)}.{os.getpid()}.'
        f'{uuid.uuid4().hex[:12]}{TMP_SUFFIX}')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _test_delay(path)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PathError(f'{path} appeared while it was being written; '
                            'refusing to overwrite it.') from None
        except OSError:  # a filesystem without hard links
            if osp.lexists(path):
                raise PathError(f'{path} exists; refusing to overwrite '
                                'it.') from None
            os.replace(tmp, path)
    finally:
        if osp.lexists(tmp):
            os.unlink(tmp)
    _fsync_dir(directory)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` into memory (to pass to :func:`write_file`)."""
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load_checkpoint_file(path: str,
                         what: str = 'checkpoint',
                         log_checksum: bool = True) -> Any:
    """The content of a checkpoint file, read with ``weights_only=True``
    (:func:`~mmseg_sctnet.compat.safe_torch_load`, the project's one
    reader).

    Raises:
        UserError: the file is missing, a folder, empty, truncated, not a
            PyTorch checkpoint, or asks to run code (the message says which
            and what to do).
    """
    check_input_file(path, what)
    from mmseg_sctnet.compat import safe_torch_load
    return safe_torch_load(path, log_checksum=log_checksum)


def load_config_file(path: str):
    """``mmengine.Config`` of ``path``. ``--cfg-options`` are merged by
    :func:`mmseg_sctnet.apis.config.load_config`, which checks their keys.

    Raises:
        UserError: the file is missing, not a ``.py``/``.json``/``.yaml``
            config, or fails to parse (the parser's message is included).
    """
    check_input_file(path, 'config file')
    if not path.endswith(('.py', '.json', '.yaml', '.yml')):
        raise PathError(f'config file {path} is not a config (.py, .json '
                        'or .yaml); pass one of the files under configs/.')
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # syntax error, missing _base_, bad import
        msg = ' '.join(str(e).split())
        raise PathError(
            f'cannot read config file {path}: {type(e).__name__}: '
            f'{msg[:300]}') from None
    return cfg
