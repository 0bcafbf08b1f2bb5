"""Running a tool of ``tools/``: in-process (its ``main``) or as a
subprocess from the repository root with this checkout's package first."""
import importlib.util
import os
import os.path as osp
import socket
import stat
import subprocess
import sys

from .models import PY, ROOT

TOOLS = osp.join(ROOT, 'tools')


def load_tool(name):
    """Import ``tools/<name>`` (``'train'``, ``'train.py'``,
    ``'dataset_converters/cityscapes.py'``) as a module, for in-process
    ``main``; registered in ``sys.modules`` so that its functions pickle
    (multiprocessing)."""
    rel = name if name.endswith('.py') else name + '.py'
    mod_name = 'tool_' + rel.replace('/', '_')[:-3]
    spec = importlib.util.spec_from_file_location(mod_name,
                                                  osp.join(TOOLS, rel))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tool_env(env=None):
    """The environment of a tool subprocess: this checkout's package first
    on PYTHONPATH (a worktree runs its own code), one thread, the
    interpreter the launcher scripts use; ``env`` on top."""
    e = dict(os.environ)
    e['PYTHONPATH'] = os.pathsep.join(
        p for p in (ROOT, os.environ.get('PYTHONPATH')) if p)
    e.setdefault('OMP_NUM_THREADS', '1')
    e.setdefault('MKL_NUM_THREADS', '1')
    e['PYTHON'] = PY
    e.pop('SCTNET_TEST_SLOW_SAVE', None)
    if env:
        e.update(env)
    return e


def run(cmd, timeout=600, env=None, **kw):
    """Run ``cmd`` from the repository root; returns the CompletedProcess
    with stdout+stderr in ``.stdout``."""
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=tool_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        **kw)


def fake_slurm(bindir):
    """An ``srun`` that records its arguments in ``bindir/srun_args.txt``
    and starts the command once, in its own place (``exec``), with Slurm's
    variables; an ``scontrol`` that records each call in
    ``bindir/scontrol_calls.txt`` and answers ``show hostname`` with
    localhost. Put ``bindir`` first on ``PATH``."""
    os.makedirs(bindir, exist_ok=True)
    srun = osp.join(bindir, 'srun')
    with open(srun, 'w') as f:
        f.write('#!/usr/bin/env bash\n'
                'echo "srun $*" > "$(dirname "$0")/srun_args.txt"\n'
                '# skip srun options (and their values) up to the program\n'
                'while [[ "$1" == -* ]] || [ ! -x "$1" ]; do shift; done\n'
                'SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 '
                'SLURM_NODELIST=localhost exec "$@"\n')
    scontrol = osp.join(bindir, 'scontrol')
    with open(scontrol, 'w') as f:
        f.write('#!/usr/bin/env bash\n'
                'echo "scontrol $*" >> "$(dirname "$0")/scontrol_calls.txt"\n'
                'if [ "$1" = show ]; then echo localhost; fi\n')
    for p in (srun, scontrol):
        os.chmod(p, os.stat(p).st_mode | stat.S_IEXEC)
    return bindir


def run_tool(args, env=None, timeout=300):
    """Run ``python <args>`` (``['tools/train.py', ...]``) from the
    repository root; stdout and stderr apart. ``env`` replaces the whole
    environment (default :func:`tool_env`)."""
    return subprocess.run(
        [PY] + list(args),
        cwd=ROOT,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout)
