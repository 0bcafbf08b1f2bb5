"""MMSegmentation's own ``tools/train.py`` and ``tools/test.py`` on shipped
configs: the scripts the mmsegmentation wheel installs under
``mmseg/.mim/tools`` (what ``mim train mmseg`` / ``mim test mmseg`` run),
started as a user would, with this package importable and nothing else.

The configs carry everything those scripts read: ``custom_imports`` of the
plugin, ``tta_model`` and a ``tta_pipeline`` that follows the config's test
pipeline (``test.py --tta`` replaces the test pipeline with it).
"""
import os.path as osp
import re

import mmseg
import pytest
from helpers.tools import PY, load_tool, run
from helpers.train import (b0_teacher_options, small_run_options,
                           write_segformer_teacher)

from mmseg_sctnet.datasets import make_cityscapes

STOCK = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
DEMO = 'configs/demo/sctnet-s_demo_cityscapes.py'
SEG50 = 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py'


def _stock(script, *args):
    res = run([PY, osp.join(STOCK, script)] + [str(a) for a in args])
    assert res.returncode == 0, res.stdout[-3000:]
    return res.stdout


def _miou(log):
    """The mIoU of the last test/val line MMEngine logged."""
    found = re.findall(r'mIoU: (\d+\.\d+)', log)
    assert found, log[-3000:]
    return float(found[-1])


def _teacher(tmp_path, channels):
    """A MiT-B0 SegFormer checkpoint converted with tools/pth_convert.py."""
    raw = write_segformer_teacher(
        str(tmp_path / 'segformer.pth'), 8 if channels == 128 else 19,
        channels=channels, seed=1)
    out = str(tmp_path / 'teacher.pth')
    load_tool('pth_convert.py').main([raw, out])
    return out


def _loaders(data):
    opts = []
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{dl}.dataset.data_root={data}', f'{dl}.num_workers=0',
                 f'{dl}.persistent_workers=False']
    return opts


def test_stock_scripts_on_the_demo_config(tmp_path):
    """Stock train.py (2 SIAM iterations), then stock test.py without and
    with --tta; the stock --tta mIoU equals this repository's
    ``tools/test.py --tta`` on the same checkpoint."""
    data = str(tmp_path / 'data') + '/'
    make_cityscapes(data, n_train=2, n_val=2, size=(128, 256), seed=5)
    teacher = _teacher(tmp_path, channels=128)
    work = tmp_path / 'work'
    train_log = _stock(
        'train.py', DEMO, '--work-dir', work, '--cfg-options',
        f'model.siam_head.teacher_checkpoint={teacher}',
        'model.backbone.init_cfg=None', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
        *_loaders(data))
    assert 'siam.loss_bfa_stage3' in train_log  # trained with SIAM
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()

    test_opts = ['--cfg-options'] + [o for o in _loaders(data)
                                     if o.startswith('test_dataloader')]
    stock_plain = _miou(_stock('test.py', DEMO, ckpt, '--work-dir',
                               tmp_path / 'stock', *test_opts))
    stock_tta = _miou(_stock('test.py', DEMO, ckpt, '--tta', '--work-dir',
                             tmp_path / 'stock_tta', *test_opts))
    res = run([PY, 'tools/test.py', DEMO, str(ckpt), '--tta', '--work-dir',
               str(tmp_path / 'ours')] + test_opts)
    assert res.returncode == 0, res.stdout[-3000:]
    ours = float(re.findall(r'^mIoU: (\d+\.\d+)', res.stdout, re.M)[-1])
    assert stock_tta == pytest.approx(ours, abs=1e-6)
    assert 0.0 <= stock_plain <= 100.0


def test_stock_scripts_on_an_official_config(tmp_path):
    """Stock train.py on an official leaf (2 SIAM iterations with a MiT-B0
    teacher, tiny crops), then stock test.py on its checkpoint."""
    data = str(tmp_path / 'data') + '/'
    make_cityscapes(data, n_train=2, n_val=1, size=(64, 128), seed=3)
    teacher = _teacher(tmp_path, channels=256)
    work = tmp_path / 'work'
    opts = small_run_options(data, crop=(64, 64), test_scale=(128, 64)) + \
        b0_teacher_options(teacher)
    train_log = _stock('train.py', SEG50, '--work-dir', work,
                       '--cfg-options', *opts)
    assert 'siam.loss_bfa_stage3' in train_log
    test_opts = [o for o in opts if o.startswith('test_dataloader')]
    log = _stock('test.py', SEG50, work / 'iter_2.pth', '--work-dir',
                 tmp_path / 'test', '--cfg-options', *test_opts)
    assert 0.0 <= _miou(log) <= 100.0
