"""Check the data of a config before training on it
(``tools/check_dataset.py``).

The checks are :func:`mmseg_sctnet.datasets.checker.check_config` (the
split's dataset built with the config's own MMSegmentation class, every
file's existence checked, every pair or a sample decoded); this module
validates the arguments first, prints the report, lists every file with a
problem on a line of its own, and gives the exit status.
"""
from typing import Optional

from ..datasets.checker import check_config
from ..io.config import load_config
from ..io.errors import UserError

__all__ = ['run_dataset_check']


def run_dataset_check(config: str,
                      split: str = 'train',
                      max_files: Optional[int] = None,
                      strict: bool = False,
                      seed: int = 0,
                      progress: bool = True,
                      cfg_options: Optional[dict] = None) -> int:
    """Check the ``split`` data of ``config`` and print the findings.

    A bad file (missing, unreadable, wrong size, wrong values) does not
    stop the check: it is reported and the sweep goes on; at the end every
    such file is listed once with its finding.

    Returns:
        int: 1 on errors (and on warnings with ``strict``), else 0.

    Raises:
        UserError: a missing/unparsable config, a ``cfg_options`` key the
            config does not define, a split the config does not define, a missing data root or folder, a bad ``max_files``.
    """
    if max_files is not None and max_files < 1:
        raise UserError(f'--max-files must be at least 1, got {max_files} '
                        '(leave it out to decode every file)')
    cfg = load_config(config, cfg_options)
    report = check_config(
        cfg, split=split, max_files=max_files, seed=seed, progress=progress)
    print()
    print(report.format(values=True))
    bad = [(path, f.level, f.code) for f in report.findings
           for path in (getattr(f, 'files', None) or [])]
    if bad:
        print(f'\n{len(bad)} file(s) with problems:')
        for path, level, code in bad:
            print(f'  {path}: {level} {code}')
    if report.errors:
        print(f'\n{len(report.errors)} error(s): training on this split '
              'would fail or learn the wrong thing; fix them first.')
        return 1
    if report.warnings:
        print(f'\n{len(report.warnings)} warning(s): read them; '
              'tools/train.py stops on warnings unless '
              '--allow-dataset-warnings is given.')
        return 1 if strict else 0
    print('\nNo problems found.')
    return 0
