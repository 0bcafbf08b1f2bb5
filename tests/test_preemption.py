"""Pre-emption: SIGTERM / SIGUSR1 during training saves a checkpoint of the
iteration it is in, exits with status 75, and ``--resume`` ends with the
uninterrupted run's weights (``PreemptionHook``, docs/reliability.md).

Real runs of ``tools/train.py``, ``tools/dist_train.sh`` (2 processes, gloo)
and ``tools/slurm_train.sh`` (a stand-in srun) on the tiny configs of the
session fixture ``tiny_training``, compared with the uninterrupted runs
``tiny_reference`` / ``tiny_dist_reference`` (shared with
tests/test_crash_resume.py). In the one-process runs the checkpoint
interval is raised to 100 with ``--cfg-options``, so the checkpoint a
signal leads to is the hook's own (saving changes nothing in a run: the
reference runs save every 2 iterations). The iteration a signal reaches is read from the stop line:
it is sent once the log shows a given iteration (or while a given
checkpoint is written), so it lands in that iteration's bookkeeping or in
the next iteration.
"""
import gc
import glob
import multiprocessing
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.hooks import Hook

from helpers.reliability import ROOT, read_losses, toy_runner, train_to_end
from helpers.tools import fake_slurm, free_port, tool_env

from mmseg_sctnet.engine.training_run import run_training
from mmseg_sctnet.io.atomic import TMP_SUFFIX
from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.io.errors import EXIT_STOPPED, RunStopped

STOP_LINE = re.compile(r'Training stopped by (SIGTERM|SIGUSR1) after '
                       r'iteration (\d+) of (\d+): checkpoint (\S+) saved\. '
                       r'Continue with the same command and --resume')
NO_INTERVAL = 'default_hooks.checkpoint.interval=100'
CPU_ONLY = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the CPU (gloo) path')


def _popen(cmd, log, env):
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=open(log, 'w'),
        stderr=subprocess.STDOUT)


def _wait_for(pred, proc, what, timeout=300):
    t0 = time.time()
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f'exited (rc {proc.returncode}) before '
                                 f'{what}')
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f'timeout waiting for {what}')
        time.sleep(0.05)


def _logged(log, text):
    return lambda: osp.isfile(log) and text in open(log).read()


def _stop_line(out, max_iters):
    """The one stop line: (signal, iteration, checkpoint)."""
    found = STOP_LINE.findall(out)
    assert len(found) == 1, out[-3000:]
    sig, it, total, ckpt = found[0]
    assert int(total) == max_iters
    return sig, int(it), ckpt


def _checkpoint_of(work, it, world_size=1, also=()):
    """The checkpoints in ``work`` are those of the iterations ``also`` and
    ``it``; that of ``it`` is complete, with every rank's RNG state, and the
    pointer names it."""
    names = sorted(os.listdir(work))
    assert sorted(n for n in names if n.startswith('iter_')) == sorted(
        {f'iter_{i}.pth' for i in (*also, it)})
    assert not [n for n in names if n.endswith(TMP_SUFFIX)]
    path = osp.join(work, f'iter_{it}.pth')
    ckpt = safe_torch_load(path, log_checksum=False)
    assert ckpt['meta']['iter'] == it
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers',
            'rng_state'} <= set(ckpt)
    assert ckpt['rng_state']['world_size'] == world_size
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == path
    return path


def _same_run(work, ref_dir, stop_at, max_iters):
    """Losses of the stopped and the resumed run equal the reference's
    (every iteration once), and so do the final weights."""
    (ref, ) = read_losses(ref_dir)
    stopped, resumed = read_losses(work)
    assert sorted(stopped) == list(range(1, stop_at + 1))
    assert sorted(resumed) == list(range(stop_at + 1, max_iters + 1))
    for run in (stopped, resumed):
        for it, loss in run.items():
            assert loss == pytest.approx(ref[it], rel=1e-6, abs=1e-7), it
    a = safe_torch_load(osp.join(ref_dir, f'iter_{max_iters}.pth'))
    b = safe_torch_load(osp.join(work, f'iter_{max_iters}.pth'))
    for k, v in a['state_dict'].items():
        torch.testing.assert_close(
            b['state_dict'][k], v, rtol=1e-4, atol=1e-6, msg=k)


def test_sigterm_saves_the_iteration_exits_75_and_resume_matches(
        tiny_training, tiny_reference):
    """One process: SIGTERM once iteration 3 is logged; a second SIGTERM and
    a SIGUSR1 while the checkpoint is being written (the atomic writer
    pauses 3 s before its rename) are ignored."""
    cfg, tmp = tiny_training.cfg, tiny_training.tmp
    work, log = str(tmp / 'preempted'), str(tmp / 'preempted.log')
    env = tool_env({'SCTNET_TEST_SLOW_SAVE': 'iter_*.pth:3'})
    proc = _popen([sys.executable, 'tools/train.py', cfg, '--work-dir', work,
                   '--cfg-options', NO_INTERVAL], log, env)
    _wait_for(_logged(log, 'Iter(train) [3/8]'), proc, 'iteration 3')
    os.kill(proc.pid, signal.SIGTERM)
    _wait_for(lambda: glob.glob(osp.join(work, '.iter_*' + TMP_SUFFIX)),
              proc, 'the checkpoint save')
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGUSR1)
    assert proc.wait(60) == EXIT_STOPPED == 75
    out = open(log).read()
    sig, it, shown = _stop_line(out, 8)
    assert sig == 'SIGTERM' and 3 <= it < 8  # 3 or 4 unless held up
    path = _checkpoint_of(work, it)
    assert shown == path
    assert (f'`python tools/train.py {cfg} --work-dir {work} --resume`'
            in out)
    assert 'Traceback' not in out

    # --resume to the end equals the uninterrupted run
    res = train_to_end(cfg, work, '--resume', '--cfg-options', NO_INTERVAL)
    assert f'Auto resume: resuming from {path}' in res
    _same_run(work, tiny_reference, it, 8)


@CPU_ONLY
def test_two_processes_stop_together_on_a_signal_to_one_rank(
        tiny_training, tiny_dist_reference):
    """tools/dist_train.sh, 2 processes: SIGTERM to rank 1 only, while rank
    0 writes iter_2.pth (paused 5 s before the rename), i.e. while rank 1 is
    in iteration 2's bookkeeping. Both ranks stop after iteration 2 (saved
    already) or 3 (saved on the signal, with both RNG states), the launcher
    exits with 75 and both processes are gone; --resume ends with the
    uninterrupted losses and weights."""
    cfg, tmp = tiny_training.cfg4, tiny_training.tmp
    work, log = str(tmp / 'dist_preempted'), str(tmp / 'dist_preempted.log')
    port = str(free_port())
    opts = ['--cfg-options', 'randomness.diff_rank_seed=True']
    proc = _popen(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
                   work, *opts], log,
                  tool_env({'MASTER_PORT': port,
                            'SCTNET_TEST_SLOW_SAVE': 'iter_2.pth:5'}))
    _wait_for(lambda: glob.glob(osp.join(work, '.iter_2.pth.*' + TMP_SUFFIX)),
              proc, 'the save of iter_2.pth')
    os.kill(_training_processes(port)[1], signal.SIGTERM)
    assert proc.wait(60) == 75
    assert _training_processes(port) == {}
    out = open(log).read()
    sig, it, shown = _stop_line(out, 4)  # rank 0's line (rank 1 logs errors)
    assert sig == 'SIGTERM' and it in (2, 3)
    assert shown == _checkpoint_of(work, it, world_size=2, also=[2])
    assert f'`bash tools/dist_train.sh {cfg} 2 --work-dir {work} --resume`' \
        in out
    assert 'Traceback' not in out

    train_to_end(cfg, work, *opts, '--resume', procs=2)
    _same_run(work, tiny_dist_reference, it, 4)


# stands in for `python -m torch.distributed.run ...`: one worker process
# that says it is ready, then, on SIGUSR1 or SIGTERM, writes the stop line
# and exits with 0 as a stopped rank does; it exits with 3 on its own after
# $STEPS tenths of a second
_FAKE_TORCHRUN = r'''#!/usr/bin/env bash
bash -c 'stop() { echo "stopped by $1" > "$SCTNET_STOP_FILE"; exit 0; }
         trap "stop USR1" USR1; trap "stop TERM" TERM
         echo "$SCTNET_STOP_FILE" > "$READY"
         for i in $(seq "$STEPS"); do sleep 0.1; done; exit 3' &
wait $!
'''


@pytest.mark.parametrize(
    'sig', [signal.SIGUSR1, signal.SIGTERM, None],
    ids=['SIGUSR1', 'SIGTERM', 'no signal'])
def test_dist_train_script_passes_signals_on(tmp_path, sig):
    """tools/dist_train.sh with a stand-in torchrun: a signal to the script
    reaches the worker (not the launcher); after a stop the script exits
    with 75 and removes its stop file; otherwise it exits with the
    launcher's status."""
    fake = tmp_path / 'python'
    fake.write_text(_FAKE_TORCHRUN)
    fake.chmod(0o755)
    ready = tmp_path / 'ready'
    proc = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', 'CONFIG', '2'], cwd=ROOT,
        env=tool_env({'PYTHON': str(fake), 'READY': str(ready),
                      'STEPS': '2' if sig is None else '600'}))
    if sig is None:
        assert proc.wait(120) == 3
    else:
        _wait_for(lambda: ready.exists() and ready.read_text().strip(),
                  proc, 'the worker')
        os.kill(proc.pid, sig)
        assert proc.wait(60) == 75
    stop_file = ready.read_text().strip()
    assert stop_file and not osp.exists(stop_file)


def _training_processes(port):
    """``{rank: pid}`` of the tools/train.py processes of the torchrun run
    with this MASTER_PORT (read from /proc)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = dict(
                    kv.split(b'=', 1) for kv in f.read().split(b'\0')
                    if b'=' in kv)
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmdline = f.read()
        except OSError:
            continue
        if (env.get(b'MASTER_PORT') == port.encode()
                and b'tools/train.py' in cmdline and b'RANK' in env):
            found[int(env[b'RANK'])] = int(pid)
    return found


@CPU_ONLY
def test_slurm_train_script_passes_sigusr1_on_and_requeues(
        tiny_training, tmp_path):
    """tools/slurm_train.sh with a stand-in srun (one task): SIGUSR1 to the
    script reaches the task, which saves and stops; the script exits with
    75 and requeues the batch job; srun was asked for the signal before the
    time limit."""
    bindir = fake_slurm(str(tmp_path / 'bin'))
    work, log = str(tmp_path / 'work'), str(tmp_path / 'slurm.log')
    env = tool_env({
        'PATH': bindir + os.pathsep + os.environ['PATH'],
        'GPUS': '1',
        'MASTER_PORT': str(free_port()),
        'SLURM_JOB_ID': '4242',
        'STOP_DIR': str(tmp_path),
    })
    proc = _popen(['bash', 'tools/slurm_train.sh', 'gpu-part', 'sct',
                   tiny_training.cfg, '--work-dir', work, '--cfg-options',
                   NO_INTERVAL], log, env)
    _wait_for(_logged(log, 'Iter(train) [2/8]'), proc, 'iteration 2')
    os.kill(proc.pid, signal.SIGUSR1)
    assert proc.wait(60) == 75
    out = open(log).read()
    sig, it, shown = _stop_line(out, 8)
    assert sig == 'SIGUSR1' and 2 <= it < 8
    assert shown == _checkpoint_of(work, it)
    with open(osp.join(bindir, 'srun_args.txt')) as f:
        assert '--signal=USR1@120' in f.read()
    with open(osp.join(bindir, 'scontrol_calls.txt')) as f:
        assert 'scontrol requeue 4242' in f.read().splitlines()
    assert not glob.glob(str(tmp_path / '.sctnet-stop.*'))


class _SignalAt(Hook):
    """Sends ``signum`` to this process while iteration ``at`` runs, and
    first to the child processes started since (its data-loader workers)
    when ``older_children`` (the pids of the children before) is given."""

    def __init__(self, at, signum=signal.SIGUSR1, older_children=None):
        self.at, self.signum, self.older = at, signum, older_children
        self.worker_pids = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 != self.at:
            return
        if self.older is not None:
            self.worker_pids = [
                p.pid for p in multiprocessing.active_children()
                if p.pid not in self.older]
            assert self.worker_pids
            for pid in self.worker_pids:
                os.kill(pid, self.signum)
        os.kill(os.getpid(), self.signum)


class _FailAt(Hook):
    """Raises during iteration ``at``."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            raise RuntimeError(f'failure at iteration {self.at}')


def _handlers():
    return {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}


def test_hook_in_process_restores_handlers_and_spares_loader_workers(
        tmp_path):
    """The hook on a toy runner: SIGUSR1 to the trainer and its data-loader
    worker during iteration 2 stops after iteration 2 with RunStopped and
    iter_2.pth (the worker, forked after the handlers were installed,
    keeps running: a dead worker would fail the run); a signal during the
    last iteration lets training end normally; the handlers are put back
    both times, and after a failed runner.train() at the next signal;
    importing the package installs none."""
    before = _handlers()
    sender = _SignalAt(
        2, older_children={p.pid for p in multiprocessing.active_children()})
    runner = toy_runner(
        str(tmp_path / 'stop'), max_iters=6, interval=4, num_workers=1,
        custom_hooks=[
            dict(type='ExactResumeHook', priority='VERY_LOW'),
            dict(type='PreemptionHook', priority='LOWEST'), sender
        ])
    with pytest.raises(RunStopped) as stop:
        run_training(runner)
    assert stop.value.iteration == 2 and runner.iter == 2
    assert stop.value.exit_status == 75
    assert stop.value.checkpoint == osp.join(str(tmp_path / 'stop'),
                                             'iter_2.pth')
    assert safe_torch_load(stop.value.checkpoint)['meta']['iter'] == 2
    assert _handlers() == before
    for pid in sender.worker_pids:
        os.kill(pid, 0)  # still there
    del runner

    runner = toy_runner(
        str(tmp_path / 'last'), max_iters=3, interval=4,
        custom_hooks=[dict(type='PreemptionHook', priority='LOWEST'),
                      _SignalAt(3, signal.SIGTERM)])
    run_training(runner)
    assert runner.iter == 3
    assert sorted(os.listdir(tmp_path / 'last'))[-2:] == [
        'iter_3.pth', 'last_checkpoint']
    assert _handlers() == before

    # a runner.train() outside run_training that fails: once the runner is
    # gone, the next signal puts the old handler back and reaches it
    got = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    try:
        runner = toy_runner(
            str(tmp_path / 'failed'), max_iters=4, interval=4,
            custom_hooks=[dict(type='PreemptionHook', priority='LOWEST'),
                          _FailAt(2)])
        with pytest.raises(RuntimeError, match='failure at iteration 2'):
            runner.train()
        left = signal.getsignal(signal.SIGUSR1)  # no after_run: still there
        assert type(getattr(left, '__self__', None)).__name__ == \
            'PreemptionHook'
        del runner, left
        gc.collect()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert got == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert _handlers() == before

    code = ('import signal, mmseg_sctnet.engine, mmseg_sctnet.apis.train; '
            'print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, '
            'signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         env=tool_env(), capture_output=True, text=True)
    assert out.stdout.split() == ['True', 'True'], out.stderr[-2000:]
