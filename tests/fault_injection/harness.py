"""Harness of the fault-injection suite: drive a CLI tool as a subprocess
with a bad input and check how it fails.

Every case asserts the same contract (docs/reliability.md):

* the exit status (non-zero for a refused run),
* no Python ``Traceback`` anywhere in stdout/stderr,
* exactly one line starting with ``error:`` (``mode='single'``), which
  names the offending file or value (``names=[...]``); batch tools that
  skip bad items (``mode='batch'``) instead print one line per skipped item
  naming it, finish the rest and exit non-zero,
* every file the user had (``keep=[...]``: files or folders) is
  byte-identical afterwards and none was deleted.

Usage in a test::

    def test_x(fault, tmp_path):
        res = fault.run('tools/pth_convert.py', [a, a, '--force'],
                        keep=[a], names=[a])
"""
import hashlib
import os
import os.path as osp
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def snapshot(paths: Iterable[str]) -> Dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders)."""
    out = {}
    for p in paths:
        p = os.fspath(p)
        if osp.isdir(p):
            for d, _, files in os.walk(p):
                for f in files:
                    full = osp.join(d, f)
                    out[full] = _digest(full)
        elif osp.isfile(p):
            out[p] = _digest(p)
    return out


@dataclass
class ToolResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error_lines(self) -> List[str]:
        return [
            ln for ln in self.output.splitlines()
            if ln.lstrip().startswith('error:')
        ]


class FaultRunner:

    def __init__(self, timeout: float = 300):
        self.timeout = timeout

    def call(self, tool: str, args: Sequence[str], cwd: str = ROOT,
             env: Optional[dict] = None) -> ToolResult:
        """Run ``tool`` (a path relative to the repository) without
        checking anything."""
        full_env = dict(os.environ)
        full_env['PYTHONPATH'] = ROOT + os.pathsep + full_env.get(
            'PYTHONPATH', '')
        full_env.setdefault('OMP_NUM_THREADS', '1')
        full_env.update(env or {})
        cmd = [sys.executable, osp.join(ROOT, tool)] + [str(a) for a in args]
        p = subprocess.run(
            cmd,
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=self.timeout)
        return ToolResult(p.returncode, p.stdout, p.stderr)

    def run(self,
            tool: str,
            args: Sequence[str],
            keep: Sequence[str] = (),
            names: Sequence[str] = (),
            rc: Optional[int] = None,
            mode: str = 'single',
            cwd: str = ROOT,
            env: Optional[dict] = None) -> ToolResult:
        """Run ``tool`` and assert the failure contract.

        Args:
            keep: files/folders that must be byte-identical afterwards.
            names: strings the ``error:`` line (``single``) or the output
                (``batch``) must contain, e.g. the bad file's name.
            rc: expected exit status; default: any non-zero.
            mode: ``'single'`` (one ``error:`` line) or ``'batch'`` (bad
                items skipped and named, the rest done, non-zero exit).
        """
        before = snapshot(keep)
        assert before or not keep, f'nothing to keep under {keep}'
        res = self.call(tool, args, cwd=cwd, env=env)
        where = f'{tool} {list(args)}\n--- output ---\n{res.output[-4000:]}'
        if rc is None:
            assert res.returncode != 0, f'exit 0 for a bad input: {where}'
        else:
            assert res.returncode == rc, (
                f'exit {res.returncode}, expected {rc}: {where}')
        assert 'Traceback' not in res.output, f'traceback: {where}'
        if mode == 'single':
            assert len(res.error_lines) == 1, (
                f'{len(res.error_lines)} error: lines, expected 1: {where}')
            for n in names:
                assert str(n) in res.error_lines[0], (
                    f'{n!r} not named in the error line: {where}')
        elif mode == 'batch':
            for n in names:
                assert str(n) in res.output, f'{n!r} not named: {where}'
        else:
            raise ValueError(mode)
        after = snapshot(keep)
        assert set(after) == set(before), (
            f'files deleted or added under {keep}: '
            f'{sorted(set(before) ^ set(after))}')
        changed = [p for p in before if before[p] != after[p]]
        assert not changed, f'input files modified: {changed}: {where}'
        return res
