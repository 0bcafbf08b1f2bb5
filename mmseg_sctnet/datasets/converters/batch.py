"""Run a conversion over many items; a bad item is skipped, not fatal.

:func:`run_batch` calls ``fn(item)`` for every item (in ``nproc``
processes), prints one line per item that fails -- ``skipped NAME:
REASON`` -- and goes on with the rest; it prints progress every tenth of
the work. The caller ends with :meth:`BatchReport.finish`, which lists the
skipped items again and gives the exit status (1 when anything was
skipped). Ctrl-C ends the run with one line (:class:`BatchInterrupted`)
saying how far it got; the outputs are written atomically, so running the
command again continues.
"""
import multiprocessing
import signal
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, List, Sequence, Tuple

from ...io.errors import UserError

__all__ = ['SkipItem', 'BatchInterrupted', 'BatchReport', 'run_batch']


class SkipItem(Exception):
    """A bad input item: the message says which file and why."""


class BatchInterrupted(UserError):
    """Ctrl-C during a batch: says how far it got (the outputs written so
    far are complete; running the command again continues)."""


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent (no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reason(err: Exception) -> str:
    if isinstance(err, (SkipItem, ValueError, OSError)) and str(err):
        return ' '.join(str(err).split())
    return f'{type(err).__name__}: {err}'


def _call(fn: Callable, item) -> Tuple[str, object]:
    try:
        return 'ok', fn(item)
    except Exception as e:  # one bad item must not stop the others
        return 'skip', _reason(e)


@dataclass
class BatchReport:
    """Outcome of :func:`run_batch`."""
    what: str
    total: int = 0
    results: List[Tuple[object, object]] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def count(self, value) -> int:
        return sum(r == value for _, r in self.results)

    def finish(self) -> int:
        """Print the skipped items once more; exit status 1 if any."""
        if not self.skipped:
            return 0
        print(f'\nskipped {len(self.skipped)} of {self.total} {self.what}:')
        for name, reason in self.skipped:
            print(f'  {name}: {reason}')
        print(f'error: {len(self.skipped)} of {self.total} {self.what} '
              'skipped (listed above); the others were converted. Fix or '
              'remove those files and run again: finished outputs are '
              'kept, so only the skipped ones are redone.')
        return 1

    def merge(self, other: 'BatchReport') -> None:
        self.total += other.total
        self.results += other.results
        self.skipped += other.skipped


def run_batch(fn: Callable,
              items: Sequence,
              nproc: int = 1,
              name: Callable = str,
              what: str = 'items') -> BatchReport:
    """``fn(item)`` for every item; failures are skipped and named.

    Args:
        fn: a picklable function (module level or ``functools.partial``).
        items: the work.
        nproc: processes (``1``: this process).
        name: the item's name in messages (e.g. its file).
        what: the items' plural noun for progress lines.

    Returns:
        BatchReport: ``results`` (item, return value) of the converted
        items, ``skipped`` (name, reason) of the others.
    """
    report = BatchReport(what=what, total=len(items))
    call = partial(_call, fn)
    step = max(1, len(items) // 10)
    t0 = time.time()
    if nproc > 1 and len(items) > 1:
        pool = multiprocessing.Pool(
            min(nproc, len(items)), initializer=_ignore_sigint)
        outcomes = pool.imap(call, items, chunksize=1)
    else:
        pool, outcomes = None, map(call, items)
    ok = False
    try:
        for i, (item, (status, value)) in enumerate(zip(items, outcomes), 1):
            if status == 'ok':
                report.results.append((item, value))
            else:
                report.skipped.append((name(item), value))
                print(f'skipped {name(item)}: {value}', flush=True)
            if i % step == 0 or i == len(items):
                print(f'[{i}/{len(items)}] {what}, {time.time() - t0:.0f} s',
                      flush=True)
        ok = True
    except KeyboardInterrupt:
        done = len(report.results) + len(report.skipped)
        raise BatchInterrupted(
            f'interrupted after {done} of {len(items)} {what}; every output '
            'written so far is complete. Run the same command again to '
            'continue (finished outputs are kept).') from None
    finally:
        if pool is not None:
            if ok:
                pool.close()
            else:  # interrupted: do not wait for the queued work
                pool.terminate()
            pool.join()
    return report
