"""tools/test.py against bad inputs (docs/reliability.md, table).

Every row: exit status 1, one ``error:`` line naming the file or value, no
traceback, the config, checkpoint and data byte-identical, and nothing
read from the dataset (each refusal comes before the test loop). The
table runs in forks of one pre-imported process (``fault_fork``); the
truncated checkpoint also runs as a plain subprocess (``fault``).
"""
import os.path as osp

import pytest
import torch
from helpers.models import CITY_CONFIG, build_cfg_model
from helpers.reliability import tiny_train_config

from mmseg_sctnet.datasets import make_cityscapes

TOOL = 'tools/test.py'


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny SCTNet-S test config on generated Cityscapes-layout data, its
    checkpoint, a checkpoint with 8 classes and damaged files."""
    d = tmp_path_factory.mktemp('fault_test')
    data = make_cityscapes(str(d / 'data'), n_train=1, n_val=1,
                           size=(64, 128))
    cfg = tiny_train_config(str(d / 'cfg.py'), data, with_test=True)
    torch.manual_seed(0)
    state = build_cfg_model(CITY_CONFIG['S'], train=False).state_dict()
    ckpt = str(d / 'model.pth')
    torch.save(dict(state_dict=state, meta=dict()), ckpt)
    blob = open(ckpt, 'rb').read()
    (d / 'truncated.pth').write_bytes(blob[:len(blob) // 3])
    (d / 'notes.pth').write_text('not a checkpoint\n')
    eight = {
        k: (v[:8] if k.startswith('decode_head.conv_seg') else v)
        for k, v in state.items()
    }
    torch.save(dict(state_dict=eight), str(d / 'eight_classes.pth'))
    # a work dir holding the config under its own name
    (d / 'run').mkdir()
    (d / 'run' / 'cfg.py').write_text(open(cfg).read())
    f = {p.name: str(p) for p in d.iterdir()}
    f['data'] = data
    return f, str(d)


def _w(tmp_path):
    return ['--work-dir', str(tmp_path / 'work')]


CASES = [
    ('truncated checkpoint',
     lambda f, t: [f['cfg.py'], f['truncated.pth']] + _w(t),
     ['truncated.pth', 'cut short']),
    ('text file as checkpoint',
     lambda f, t: [f['cfg.py'], f['notes.pth']] + _w(t),
     ['notes.pth', 'not a PyTorch checkpoint']),
    ('config and checkpoint swapped',
     lambda f, t: [f['model.pth'], f['cfg.py']] + _w(t),
     ['model.pth', 'not a config']),
    ('checkpoint of another class count',
     lambda f, t: [f['cfg.py'], f['eight_classes.pth']] + _w(t),
     ['predicts 8 classes', '19']),
    ('--work-dir is the checkpoint',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--work-dir',
                   f['model.pth']], ['--work-dir', 'model.pth']),
    ('--metrics-json is the checkpoint',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--metrics-json',
                   f['model.pth']] + _w(t),
     ['--metrics-json', 'model.pth', 'is the input']),
    ('--show-dir inside the data folder',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--show-dir',
                   osp.join(f['data'], 'leftImg8bit', 'val')] + _w(t),
     ['--show-dir', 'inside the input folder']),
    ('--out and --show-dir the same folder',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--out',
                   str(t / 'o'), '--show-dir',
                   str(t / 'o')] + _w(t), ['--out and --show-dir']),
    ('config in the work dir under its own name',
     lambda f, t: [osp.join(f['run'], 'cfg.py'), f['model.pth'],
                   '--work-dir', f['run']], ['cfg.py', 'work dir']),
    ('misspelled --cfg-options key',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--cfg-options',
                   'test_dataloader.batchsize=2'] + _w(t),
     ["'test_dataloader.batchsize'", "'test_dataloader.batch_size'"]),
    ('unsupported --eval metric',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--eval', 'bbox'] + _w(t),
     ['bbox']),
    ('--format-only without --out',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--format-only'] + _w(t),
     ['--format-only needs --out']),
    ('--format-only with --eval',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--format-only', '--out',
                   str(t / 'o'), '--eval', 'mIoU'] + _w(t),
     ['--format-only with --eval']),
    ('--format-only on an 8-class config',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--format-only', '--out',
                   str(t / 'o'), '--cfg-options',
                   'model.decode_head.num_classes=8'] + _w(t),
     ['--format-only', '19 Cityscapes classes', 'predicts 8 classes']),
    ('--format-only without a test split',
     lambda f, t: [f['cfg.py'], f['model.pth'], '--format-only', '--out',
                   str(t / 'o')] + _w(t),
     [osp.join('leftImg8bit', 'test'), 'not found']),
]


@pytest.mark.parametrize('name,argv,names', CASES, ids=[c[0] for c in CASES])
def test_refused(fault_fork, files, tmp_path, name, argv, names):
    f, root = files
    res = fault_fork.run(TOOL, argv(f, tmp_path), keep=[root], names=names)
    assert 'Iter(test)' not in res.output  # the test loop never ran


def test_truncated_checkpoint_in_a_fresh_process(fault, files, tmp_path):
    f, root = files
    fault.run(TOOL, [f['cfg.py'], f['truncated.pth']] + _w(tmp_path),
              keep=[root], names=['truncated.pth'])
