"""Checks of the inference/test/train tools on top of
:mod:`mmseg_sctnet.apis.files` (inputs exist, outputs writable and never
an input, reading configs); checkpoints are read by
:func:`mmseg_sctnet.compat.read_checkpoint`:

* :func:`check_output_folder`: an output folder that is no input and does
  not lie inside an input folder.
* :func:`check_planned_outputs`: the files a run will write: never an
  input, existing ones only with ``--force``.
* :func:`check_config_dump`: the config is not the file the run writes
  its copy of the config to.
* :class:`RunInterrupted`: Ctrl-C, reported as one line saying what is
  complete.
"""
import os
import os.path as osp
from typing import Iterable, Optional, Sequence

from mmseg_sctnet.compat.errors import UserError

from .files import PathError, check_output_dir, same_file

__all__ = [
    'RunInterrupted', 'is_inside', 'check_output_folder',
    'check_planned_outputs', 'check_config_dump'
]


class RunInterrupted(UserError):
    """Ctrl-C (SIGINT) during a run; the message says what is complete."""


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
