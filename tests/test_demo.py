"""The demo pipeline (tools/demo.py) at reduced size, and its data reuse.

The run: 48 train / 12 val generated images of 96x192 (trained and tested
at that size), a MiT-B0 SegFormer teacher trained with MMSegmentation for
40 iterations, converted, SCTNet-S with SIAM for 60 iterations, evaluated
by tools/test.py. Floor: 40 mIoU. A model that predicts one class
everywhere scores at most ~4 mIoU here (one class of 8 with IoU <= its
pixel share, about 30% at most) and a random one less; the reduced run
measured 57.3 mIoU on a 2-core Xeon (the full demo about 90,
docs/demo.md), so the floor catches a pipeline that does not learn (wrong
labels, teacher not loaded, broken SIAM gradients) without being tight
enough to flake.
"""
import json
import os
import os.path as osp

import cv2
import pytest
from helpers.tools import PY, run

from mmseg_sctnet.datasets import CLASSES_STREET

FLOOR = 40.0


def test_demo_reduced_run(tmp_path):
    out = tmp_path / 'out'
    data = tmp_path / 'data'
    res = run([
        PY, 'tools/demo.py', '--out-dir',
        str(out), '--data-root',
        str(data), '--n-train', '48', '--n-val', '12', '--size', '96', '192',
        '--teacher-iters', '40', '--student-iters', '60', '--batch-size', '4',
        '--num-workers', '0'
    ], env=dict(OMP_NUM_THREADS='2'))
    assert res.returncode == 0, res.stdout[-4000:]
    text = res.stdout
    # the five steps ran, through the real tools
    for step in ('[1/5] data', '[2/5] teacher', '[3/5] convert',
                 '[4/5] student', '[5/5] test'):
        assert step in text
    assert 'Loaded frozen teacher from' in text
    assert 'saved ' + str(out / 'teacher' / 'segformer_mit-b0_teacher.pth') \
        in text

    with open(out / 'summary.json') as f:
        s = json.load(f)
    miou = s['test']['metrics']['mIoU']
    assert miou >= FLOOR, (miou, s['test']['per_class'])
    assert list(s['test']['per_class']) == list(CLASSES_STREET)
    assert s['teacher']['max_iters'] == 40 and s['student']['max_iters'] == 60
    assert s['data'] == dict(s['data'], n_train=48, n_val=12, size=[96, 192])
    # the same number in the table, the summary and the console
    assert f'**val mIoU: {miou:.2f}**' in (out / 'summary.md').read_text()
    assert f'mIoU {miou:.2f}' in (out / 'miou_table.md').read_text()
    assert f'with SIAM: val mIoU {miou:.2f}' in text

    # PNGs: one input | ground truth | prediction image per val image
    preds = sorted(os.listdir(out / 'predictions'))
    assert len(preds) == 12
    img = cv2.imread(str(out / 'predictions' / preds[0]))
    assert img.shape[1] == 3 * 192 + 2 * 4 and img.shape[0] > 96
    curves = cv2.imread(str(out / 'curves.png'))
    assert curves is not None and curves.shape[1] >= 600
    grid = cv2.imread(str(out / 'predictions_grid.png'))
    assert grid is not None and grid.shape[0] > 6 * 96
    for k in ('summary', 'miou_table', 'curves', 'checkpoint', 'metrics'):
        assert osp.exists(s['files'][k].split(' ')[0]), k
        assert s['files'][k].split(' ')[0] in text


def test_demo_data_is_reused_and_foreign_folders_are_kept(tmp_path):
    from mmseg_sctnet.experiments.demo import prepare_data
    from mmseg_sctnet.io.errors import PathError
    root = str(tmp_path / 'data')
    kw = dict(n_train=3, n_val=2, size=(32, 64))
    first = prepare_data(root, **kw)
    assert not first['reused']
    img = osp.join(root, 'leftImg8bit', 'train', 'aachen',
                   'aachen_000000_000000_leftImg8bit.png')
    mtime = os.stat(img).st_mtime_ns
    again = prepare_data(root, **kw)
    assert again['reused'] and os.stat(img).st_mtime_ns == mtime
    # other settings: generated again (the folder is the demo's own)
    third = prepare_data(root, **dict(kw, n_train=4))
    assert not third['reused']
    assert len(os.listdir(osp.join(root, 'leftImg8bit', 'train',
                                   'bremen'))) == 2
    # a folder the demo did not write is never touched
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('x')
    with pytest.raises(PathError, match='not written by the demo'):
        prepare_data(str(foreign), **kw)
    assert (foreign / 'keep.txt').read_text() == 'x'


def test_data_options_train_and_test_at_the_generated_size(tmp_path):
    """Data generated at another size than the demo configs' 128x256 is
    resized, cropped and padded at its own size by both demo configs (the
    real dataset class and pipelines read it), and the settings of a
    generated folder are read back from its stamp."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    from mmseg_sctnet.experiments.demo import (STUDENT_CFG, TEACHER_CFG,
                                               _parse, data_options,
                                               generated_settings,
                                               prepare_data)
    from mmseg_sctnet.io.config import load_config
    root = str(tmp_path / 'data')
    assert generated_settings(root) == {}
    prepare_data(root, n_train=2, n_val=1, size=(64, 96), seed=3)
    assert generated_settings(root) == dict(n_train=2, n_val=1,
                                            size=[64, 96], seed=3)
    assert data_options(root, size=(128, 256)) == data_options(root)
    # too small for the models' stride 32: refused, naming the size
    from mmseg_sctnet.io.errors import ConfigError
    with pytest.raises(ConfigError, match=r'--size 16 32: .* at least 32x32'):
        data_options(root, size=(16, 32))
    init_default_scope('mmseg')
    for config in (STUDENT_CFG, TEACHER_CFG):
        cfg = load_config(config)
        cfg.merge_from_dict(_parse(data_options(root, 2, 0, (64, 96))))
        assert tuple(cfg.model.data_preprocessor.size) == (64, 96)
        test = DATASETS.build(cfg.test_dataloader.dataset)[0]
        assert tuple(test['inputs'].shape) == (3, 64, 96)
        train = DATASETS.build(cfg.train_dataloader.dataset)
        for i in range(2):
            h, w = train[i]['inputs'].shape[1:]
            assert h <= 64 and w <= 96
        # the padded training batch is 64x96, not the configs' 128x256
        pre = MODELS.build(cfg.model.data_preprocessor)
        batch = pre(dict(inputs=[train[0]['inputs'], train[1]['inputs']],
                         data_samples=[train[0]['data_samples'],
                                       train[1]['data_samples']]), True)
        assert tuple(batch['inputs'].shape) == (2, 3, 64, 96)
        assert batch['inputs'].dtype == torch.float32
