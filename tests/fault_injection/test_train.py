"""tools/train.py against bad inputs (docs/reliability.md, table).

Every row: exit status 1, one ``error:`` line naming the file or value, no
traceback, the config, checkpoints and data byte-identical, no training
iteration run. The table runs in forks of one pre-imported process
(``fault_fork``); a misspelled key also runs as a plain subprocess
(``fault``); Ctrl-C during training runs as a real process.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from harness import ROOT, snapshot
from helpers.reliability import tiny_train_config

from mmseg_sctnet.datasets import make_cityscapes

TOOL = 'tools/train.py'


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny SCTNet-S training config on generated data, damaged
    checkpoints, a broken config and a work dir holding its config."""
    d = tmp_path_factory.mktemp('fault_train')
    data = make_cityscapes(str(d / 'data'), n_train=2, n_val=1,
                           size=(64, 128))
    cfg = tiny_train_config(str(d / 'cfg.py'), data, max_iters=4,
                            ckpt_interval=1)
    good = str(d / 'good.pth')
    torch.save(dict(state_dict=dict(w=torch.arange(4096.))), good)
    blob = open(good, 'rb').read()
    (d / 'truncated.pth').write_bytes(blob[:len(blob) // 2])
    (d / 'notes.pth').write_text('not a checkpoint\n')
    (d / 'broken.py').write_text('model = dict(\n')
    (d / 'run').mkdir()
    (d / 'run' / 'cfg.py').write_text(open(cfg).read())
    f = {p.name: str(p) for p in d.iterdir()}
    f['data'] = data
    return f, str(d)


def _w(tmp_path):
    return ['--work-dir', str(tmp_path / 'work')]


CASES = [
    ('misspelled top-level key',
     lambda f, t: [f['cfg.py'], '--cfg-options', 'trian_cfg.max_iters=4'] +
     _w(t), ["'trian_cfg'", "did you mean 'train_cfg'?"]),
    ('misspelled nested key',
     lambda f, t: [f['cfg.py'], '--cfg-options',
                   'model.decode_head.num_clases=8'] + _w(t),
     ["'model.decode_head.num_classes'"]),
    ('model argument that does not exist',
     lambda f, t: [f['cfg.py'], '--cfg-options',
                   '+model.backbone.base_channel=16'] + _w(t),
     ["'model.backbone.base_channel'", 'SCTNet', "'base_channels'"]),
    ('config with a syntax error', lambda f, t: [f['broken.py']] + _w(t),
     ['broken.py']),
    ('--resume a truncated checkpoint',
     lambda f, t: [f['cfg.py'], '--resume', f['truncated.pth']] + _w(t),
     ['truncated.pth', 'cut short']),
    ('--resume a text file',
     lambda f, t: [f['cfg.py'], '--resume', f['notes.pth']] + _w(t),
     ['notes.pth', 'not a PyTorch checkpoint']),
    ('load_from a text file',
     lambda f, t: [f['cfg.py'], '--cfg-options',
                   f'load_from={f["notes.pth"]}'] + _w(t), ['notes.pth']),
    ('--work-dir is a file',
     lambda f, t: [f['cfg.py'], '--work-dir', f['good.pth']],
     ['--work-dir', 'good.pth']),
    ('config in the work dir under its own name',
     lambda f, t: [osp.join(f['run'], 'cfg.py'), '--work-dir', f['run']],
     ['cfg.py', 'work dir']),
    ('missing data folder',
     lambda f, t: [f['cfg.py'], '--cfg-options',
                   'train_dataloader.dataset.data_root=' +
                   str(t / 'no_data')] + _w(t), ['no_data']),
]


@pytest.mark.parametrize('name,argv,names', CASES, ids=[c[0] for c in CASES])
def test_refused(fault_fork, files, tmp_path, name, argv, names):
    f, root = files
    res = fault_fork.run(TOOL, argv(f, tmp_path), keep=[root], names=names)
    assert 'Iter(train)' not in res.output  # no iteration ran


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU-only box')
def test_amp_without_cuda_or_native_bf16(fault_fork, files, tmp_path):
    """--amp on a CPU without AVX512-BF16/AMX (faked with SCTNET_CPU_FLAGS
    on any machine): one line naming the flags and where they were read."""
    f, root = files
    res = fault_fork.run(
        TOOL, [f['cfg.py'], '--amp'] + _w(tmp_path), keep=[root],
        names=['--amp needs a CUDA GPU', 'avx512_bf16 / amx_bf16',
               '$SCTNET_CPU_FLAGS', 'train without --amp'],
        env=dict(SCTNET_CPU_FLAGS='avx2 fma'))
    assert 'Iter(train)' not in res.output


def test_misspelled_key_in_a_fresh_process(fault, files, tmp_path):
    f, root = files
    fault.run(TOOL, [f['cfg.py'], '--cfg-options', 'trian_cfg.max_iters=4'] +
              _w(tmp_path), keep=[root], names=['trian_cfg'])


def test_interrupted_training(files, tmp_path):
    """Ctrl-C after the first checkpoint: one error line naming the
    iteration and the last complete checkpoint (which loads), no
    traceback, inputs intact."""
    f, root = files
    before = snapshot([root])
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    p = subprocess.Popen(
        [sys.executable, TOOL, f['cfg.py'], '--work-dir', str(work),
         '--cfg-options', 'train_cfg.max_iters=1000'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.time() + 300
    while not (work / 'last_checkpoint').is_file() and \
            time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    output = stdout + stderr
    assert p.returncode == 1, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    errors = [ln for ln in output.splitlines() if ln.startswith('error:')]
    assert len(errors) == 1 and 'interrupted at iteration' in errors[0]
    assert '--resume' in errors[0]
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt in errors[0]
    from mmseg_sctnet.io.checkpoint import safe_torch_load
    assert safe_torch_load(ckpt)['meta']['iter'] >= 1
    assert snapshot([root]) == before
