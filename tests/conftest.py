"""Fixtures shared by the whole suite.

Nothing here changes the process at import: the working directory and the
mmseg default scope are set by the session fixture below, and helper modules
in ``tests/`` are importable through ``pythonpath`` in ``pytest.ini``.
"""
import os
import signal
from types import SimpleNamespace

import pytest
from helpers.models import ROOT, write_official_checkpoint
from helpers.reliability import tiny_train_config, train_to_end

import mmseg_sctnet  # noqa: F401  (registers the plugin's modules)
from mmseg_sctnet.datasets import make_cityscapes


@pytest.fixture(scope='session')
def repo_root():
    """Absolute path of the repository root."""
    return ROOT


@pytest.fixture(scope='session', autouse=True)
def _repo_cwd_and_scope():
    """Run every test in the repository root with mmseg's default scope,
    and with this checkout first on ``PYTHONPATH`` for subprocesses.

    Configs and tools are named by paths relative to the root, as in the
    README. The previous working directory is restored at the end.
    """
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        # tools run as subprocesses import this checkout's package (a
        # worktree tests its own code, not the installed copy)
        mp.setenv('PYTHONPATH',
                  os.pathsep.join(p for p in (ROOT, os.environ.get(
                      'PYTHONPATH')) if p))
        yield ROOT


@pytest.fixture(scope='session')
def official_ckpt_s(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('official') / 'sctnet_s_seg50.pth')
    state = write_official_checkpoint(path, 'S', seed=1)
    return path, state


@pytest.fixture(scope='session')
def official_ckpt_b(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('official') / 'sctnet_b_seg50.pth')
    state = write_official_checkpoint(path, 'B', seed=2)
    return path, state


@pytest.fixture(scope='session')
def tiny_training(tmp_path_factory):
    """Generated Cityscapes-layout data (8 training images) and two tiny
    SCTNet-S configs on it (``helpers.reliability.tiny_train_config``):
    ``cfg`` 8 iterations, ``cfg4`` 4 iterations, a checkpoint every 2. The
    crash-resume and pre-emption tests interrupt runs of these."""
    tmp = tmp_path_factory.mktemp('tiny_training')
    data = make_cityscapes(str(tmp / 'data'), n_train=8, n_val=1)
    return SimpleNamespace(
        tmp=tmp,
        data=data,
        cfg=tiny_train_config(
            str(tmp / 'tiny.py'), data, max_iters=8, ckpt_interval=2),
        cfg4=tiny_train_config(
            str(tmp / 'tiny4.py'), data, max_iters=4, ckpt_interval=2))


@pytest.fixture(scope='session')
def tiny_reference(tiny_training):
    """Work dir of the uninterrupted one-process run of
    ``tiny_training.cfg`` (``iter_2.pth`` ... ``iter_8.pth``)."""
    work = str(tiny_training.tmp / 'reference')
    train_to_end(tiny_training.cfg, work)
    return work


@pytest.fixture(scope='session')
def tiny_dist_reference(tiny_training):
    """Work dir of the uninterrupted two-process run (torchrun, gloo) of
    ``tiny_training.cfg4`` with ``randomness.diff_rank_seed=True`` (each
    rank draws its own augmentations)."""
    work = str(tiny_training.tmp / 'dist_reference')
    train_to_end(tiny_training.cfg4, work, '--cfg-options',
                 'randomness.diff_rank_seed=True', procs=2)
    return work


@pytest.fixture(scope='session', autouse=True)
def _ctrl_c_reaches_the_tools():
    """Let the Ctrl-C tests' SIGINT reach the tools they start.

    A non-interactive shell starts background jobs (``make test &``,
    ``nohup ... &``) with SIGINT ignored, and every child inherits that:
    the tools would then never see the Ctrl-C the fault tests send (found
    when the suite ran in the background: three interrupt tests ran to the
    end or to their timeouts). A Python handler here is reset to the
    default in every started program, which then installs its own.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)
