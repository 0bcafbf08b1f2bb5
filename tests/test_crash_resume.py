"""Crash-safe training: kill -9 during a checkpoint save and during
iterations, resume with --resume, and get the uninterrupted run's losses.

Real ``tools/train.py`` subprocesses (SCTNet-S, 64x128 crops, batch 2,
8 iterations, a checkpoint every 2) on generated Cityscapes-layout data;
the configs and the uninterrupted runs are the session fixtures
``tiny_training``, ``tiny_reference`` and ``tiny_dist_reference``
(conftest.py), shared with tests/test_preemption.py.
The save is made observable with ``SCTNET_TEST_SLOW_SAVE=iter_4.pth:60``:
the atomic writer sleeps between writing the temporary file of iter_4.pth
and renaming it, and the test kills the process in that window.
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers.tools import tool_env
from helpers.reliability import ROOT, read_losses, train_to_end

from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.io.atomic import TMP_SUFFIX

MAX_ITERS = 8


def _start(cfg, work_dir, log, env, resume=False):
    args = [sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=open(log, 'w'),
        stderr=subprocess.STDOUT)


def _wait_for(pred, proc, what, timeout=240):
    t0 = time.time()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f'training exited (rc {proc.returncode}) '
                                 f'before {what}')
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f'timeout waiting for {what}')
        time.sleep(0.05)


def _kill9(proc):
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL


def _pointer(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _complete_checkpoints(work_dir):
    """Every iter_*.pth loads (weights_only) and has the right iteration."""
    found = {}
    for path in glob.glob(osp.join(work_dir, 'iter_*.pth')):
        ckpt = safe_torch_load(path, log_checksum=False)
        it = int(osp.basename(path)[5:-4])
        assert ckpt['meta']['iter'] == it
        assert {
            'state_dict', 'optimizer', 'message_hub', 'param_schedulers',
            'rng_state'
        } <= set(ckpt)
        found[it] = path
    return found


def test_kill9_during_save_and_iterations_then_resume_matches(
        tiny_training, tiny_reference):
    tmp, cfg = tiny_training.tmp, tiny_training.cfg
    # the uninterrupted reference run
    ref_dir = tiny_reference
    ref = read_losses(ref_dir)
    assert len(ref) == 1 and sorted(ref[0]) == list(range(1, MAX_ITERS + 1))
    ref = ref[0]

    # 1) SIGKILL in the middle of saving iter_4.pth
    work = str(tmp / 'work')
    env = tool_env()
    env['SCTNET_TEST_SLOW_SAVE'] = 'iter_4.pth:60'
    proc = _start(cfg, work, str(tmp / 'run1.log'), env)
    tmp_glob = osp.join(work, '.iter_4.pth.*' + TMP_SUFFIX)
    _wait_for(lambda: glob.glob(tmp_glob), proc, 'the save of iter_4.pth')
    partial = glob.glob(tmp_glob)[0]
    # all bytes written (about the size of iter_2.pth), not yet renamed
    size2 = osp.getsize(osp.join(work, 'iter_2.pth'))
    _wait_for(lambda: osp.getsize(partial) > size2 - 4096, proc,
              'the temporary file to be written')
    _kill9(proc)
    assert not osp.exists(osp.join(work, 'iter_4.pth'))
    assert sorted(_complete_checkpoints(work)) == [2]
    assert _pointer(work) == osp.join(work, 'iter_2.pth')

    # 2) --resume (from iter_2), SIGKILL while iterating after iteration 5
    log2 = str(tmp / 'run2.log')
    proc = _start(cfg, work, log2, tool_env(), resume=True)
    _wait_for(lambda: f'Iter(train) [5/{MAX_ITERS}]' in open(log2).read(),
              proc, 'iteration 5')
    _kill9(proc)
    assert not osp.exists(partial), 'stale temp file of the killed save'
    ckpts = _complete_checkpoints(work)
    assert 4 in ckpts  # written by the resumed run before the kill
    last = _pointer(work)
    assert last in ckpts.values()
    resume_iter = max(it for it, p in ckpts.items() if p == last)

    # 3) --resume again, to the end
    log3 = str(tmp / 'run3.log')
    proc = _start(cfg, work, log3, tool_env(), resume=True)
    assert proc.wait(300) == 0, open(log3).read()[-3000:]
    assert f'Auto resume: resuming from {last}' in open(log3).read()

    runs = read_losses(work)
    assert len(runs) == 3
    run1, run2, run3 = runs
    assert sorted(run1) == [1, 2, 3, 4]  # killed while saving iteration 4
    assert min(run2) == 3 and 5 in run2  # resumed from iter_2.pth
    assert sorted(run3) == list(range(resume_iter + 1, MAX_ITERS + 1))
    for run in (run1, run2, run3):
        for it, loss in run.items():
            assert loss == pytest.approx(
                ref[it], rel=1e-6, abs=1e-7), (
                    f'iteration {it}: {loss} vs uninterrupted {ref[it]}')
    # and the final weights equal the uninterrupted run's
    a = safe_torch_load(osp.join(ref_dir, f'iter_{MAX_ITERS}.pth'))
    b = safe_torch_load(osp.join(work, f'iter_{MAX_ITERS}.pth'))
    for k, v in a['state_dict'].items():
        torch.testing.assert_close(
            b['state_dict'][k], v, rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path')
def test_two_process_resume_matches_uninterrupted(tiny_training,
                                                  tiny_dist_reference):
    """2 processes (torchrun, gloo): a run resumed from iter_2.pth has the
    uninterrupted run's losses and final weights. Rank 1's random
    augmentations reach rank 0's loss and the weights through the averaged
    gradients, so every rank's RNG state must be saved and restored."""
    ref_dir = tiny_dist_reference
    work = str(tiny_training.tmp / 'dist_resumed')
    # diff_rank_seed: each rank draws its own random augmentations
    out = train_to_end(tiny_training.cfg4, work, '--cfg-options',
                       'randomness.diff_rank_seed=True', '--resume',
                       osp.join(ref_dir, 'iter_2.pth'), procs=2)
    # (rank 0 logs it; ranks > 0 log errors only)
    assert 'restored from the checkpoint for iteration 3 (2 processes)' in out
    ckpt = safe_torch_load(osp.join(ref_dir, 'iter_2.pth'))
    assert ckpt['rng_state']['world_size'] == 2
    r0, r1 = ckpt['rng_state']['ranks']
    assert not np.array_equal(r0['numpy'][1], r1['numpy'][1])  # 2 ranks
    (ref, ), (resumed, ) = read_losses(ref_dir), read_losses(work)
    assert sorted(resumed) == [3, 4]
    for it in (3, 4):
        assert resumed[it] == pytest.approx(ref[it], rel=1e-6, abs=1e-7)
    a = safe_torch_load(osp.join(ref_dir, 'iter_4.pth'))['state_dict']
    b = safe_torch_load(osp.join(work, 'iter_4.pth'))['state_dict']
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=1e-5, atol=1e-6, msg=k)
