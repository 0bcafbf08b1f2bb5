"""Run CLI tools in forked copies of one pre-imported Python process.

A fresh ``python tools/x.py`` spends seconds importing torch, MMEngine,
MMSegmentation and the plugin before the tool checks its first argument;
a table of bad inputs would spend nearly all its time there. This server
(a separate interpreter started once per test session) imports those
modules once, then for every request forks: the child switches to the
request's folder, environment and ``sys.argv``, points file descriptors
1 and 2 at files, and runs the tool as ``__main__`` (``runpy.run_path``,
as ``python tools/x.py ARGS`` does). An uncaught exception prints Python's
traceback and exits 1, ``SystemExit`` exits as the interpreter would, so
the exit status and output are those of the command line; only the import
time is saved. :class:`ForkedRunner` has the interface (and the checks)
of :class:`harness.FaultRunner`.

What this cannot see: a tool that fails while importing modules the
server imported already. Each tool keeps one case run by the plain
:class:`harness.FaultRunner` for that.
"""
import json
import os
import os.path as osp
import select
import subprocess
import sys
import tempfile
import threading
from typing import Optional, Sequence

PRELOAD = ('torch', 'mmengine', 'mmengine.config', 'mmseg_sctnet',
           'mmseg_sctnet.apis', 'mmseg_sctnet.apis.inference',
           'mmseg_sctnet.apis.train', 'mmseg_sctnet.apis.test', 'cv2',
           'PIL.Image', 'scipy.io', 'cityscapesscripts.helpers.labels')


def _child(req: dict) -> None:
    """In the forked child: become ``python TOOL ARGS`` and exit."""
    import runpy
    import traceback
    code = 1
    try:
        os.chdir(req['cwd'])
        os.environ.update(req['env'])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, 'stdout'), (2, 'stderr')):
            f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(f, fd)
            os.close(f)
        tool = req['tool']
        sys.argv = [tool] + list(req['args'])
        sys.path[0] = osp.dirname(tool)  # as for a script
        try:
            runpy.run_path(tool, run_name='__main__')
            code = 0
        except SystemExit as e:  # what the interpreter does with it
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def serve() -> None:
    """Read one JSON request per line on stdin, answer ``{"rc": N}``."""
    import importlib
    for m in PRELOAD:
        try:
            importlib.import_module(m)
        except ImportError:  # optional; the tool reports it itself
            pass
    out = sys.stdout
    out.write('ready\n')
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        out.write(json.dumps(dict(rc=rc)) + '\n')
        out.flush()


def _import_harness():
    here = osp.dirname(osp.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import harness
    return harness


class ForkedRunner(_import_harness().FaultRunner):
    """:class:`harness.FaultRunner` whose tools run in forks of a server
    that has imported torch and the plugin once."""

    def __init__(self, timeout: float = 300):
        super().__init__(timeout)
        self._proc = None
        self._lock = threading.Lock()

    def _start(self):
        from harness import ROOT
        env = dict(os.environ)
        env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
        env.setdefault('OMP_NUM_THREADS', '1')
        self._proc = subprocess.Popen([sys.executable, __file__],
                                      cwd=ROOT,
                                      env=env,
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE,
                                      text=True)
        ready = self._proc.stdout.readline()
        assert ready.strip() == 'ready', 'fork server did not start'

    def close(self):
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
            self._proc = None

    def call(self,
             tool: str,
             args: Sequence[str],
             cwd: Optional[str] = None,
             env: Optional[dict] = None):
        from harness import ROOT, ToolResult
        with self._lock, tempfile.TemporaryDirectory() as d:
            if self._proc is None:
                self._start()
            req = dict(
                tool=osp.join(ROOT, tool),
                args=[str(a) for a in args],
                cwd=str(cwd or ROOT),
                env=dict(env or {}),
                stdout=osp.join(d, 'stdout'),
                stderr=osp.join(d, 'stderr'))
            self._proc.stdin.write(json.dumps(req) + '\n')
            self._proc.stdin.flush()
            ready, _, _ = select.select([self._proc.stdout], [], [],
                                        self.timeout)
            if not ready:  # a hung tool: drop the server, start anew
                self._proc.kill()
                self._proc = None
                raise subprocess.TimeoutExpired(req['tool'], self.timeout)
            rc = json.loads(self._proc.stdout.readline())['rc']
            with open(req['stdout']) as f:
                stdout = f.read()
            with open(req['stderr']) as f:
                stderr = f.read()
        return ToolResult(rc, stdout, stderr)


if __name__ == '__main__':
    serve()
