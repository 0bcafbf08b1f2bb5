"""tools/class_weights.py against bad inputs: exit status 1, one ``error:``
line naming the file or value, no traceback, config and data
byte-identical."""
import glob
import os
import os.path as osp

import bad_files as bf
import cv2
import numpy as np
import pytest

TOOL = 'tools/class_weights.py'
CFG = osp.abspath(
    'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')


@pytest.fixture
def data(tmp_path):
    """A tiny Cityscapes (3 train pairs) and a config pointing at it."""
    from mmseg_sctnet.datasets import make_cityscapes
    root = make_cityscapes(
        str(tmp_path / 'city'), n_train=3, n_val=1, size=(32, 64))
    cfg = bf.text(
        tmp_path / 'my_city.py', f"_base_ = ['{CFG}']\n"
        f"train_dataloader = dict(dataset=dict(data_root='{root}'))\n"
        f"val_dataloader = dict(dataset=dict(data_root='{root}'))\n"
        f"test_dataloader = dict(dataset=dict(data_root='{root}'))\n")
    labels = sorted(glob.glob(osp.join(
        root, 'gtFine', 'train', '*', '*_labelTrainIds.png')))
    return root, cfg, labels


def test_label_values_outside_the_classes(fault_fork, data):
    root, cfg, labels = data
    cv2.imwrite(labels[1], np.full((32, 64), 30, np.uint8))
    fault_fork.run(TOOL, [cfg, '--quiet'], keep=[root, cfg],
                   names=[labels[1], '[30]', 'check_dataset.py'])


def test_unreadable_and_missing_label_files(fault_fork, data):
    root, cfg, labels = data
    with open(labels[0], 'rb') as f:
        head = f.read(60)
    with open(labels[0], 'wb') as f:
        f.write(head)  # truncated PNG
    fault_fork.run(TOOL, [cfg, '--quiet'], keep=[root, cfg],
                   names=[labels[0], 'cannot be read', 'check_dataset.py'])
    os.unlink(labels[0])
    fault_fork.run(TOOL, [cfg, '--quiet'], keep=[root, cfg],
                   names=[labels[0]])


def test_split_without_labels(fault_fork, data, tmp_path):
    """A test split read without labels (no seg_map_path, as the
    Cityscapes test server's images)."""
    root, cfg, _ = data
    no_labels = bf.text(
        tmp_path / 'no_labels.py', f"_base_ = ['{cfg}']\n"
        "test_dataloader = dict(dataset=dict(data_prefix=dict(\n"
        "    _delete_=True, img_path='leftImg8bit/val')))\n")
    fault_fork.run(TOOL, [no_labels, '--split', 'test', '--quiet'],
                   keep=[root, cfg, no_labels],
                   names=['test split', 'has no labels'])


def test_every_pixel_ignored(fault_fork, data):
    root, cfg, labels = data
    for f in labels:
        cv2.imwrite(f, np.full((32, 64), 255, np.uint8))
    fault_fork.run(TOOL, [cfg, '--quiet'], keep=[root, cfg],
                   names=['no labelled pixel', 'ignore index 255'])


CASES = [
    ('config not found', lambda c: ['configs/nope.py'], ['nope.py']),
    ('model and dataset disagree',
     lambda c: [c, '--cfg-options', 'model.decode_head.num_classes=5'],
     ['predicts 5 classes', 'has 19']),
    ('missing data folder',
     lambda c: [c, '--cfg-options',
                'train_dataloader.dataset.data_root=/nonexistent/city'],
     ['/nonexistent/city']),
]


@pytest.mark.parametrize('name,args,names', CASES, ids=[c[0] for c in CASES])
def test_refused(fault_fork, data, name, args, names):
    root, cfg, _ = data
    fault_fork.run(TOOL, args(cfg) + ['--quiet'], keep=[root, cfg],
                   names=names)


def test_good_run_leaves_inputs_intact(fault_fork, data):
    root, cfg, _ = data
    from harness import snapshot
    before = snapshot([root, cfg])
    res = fault_fork.call(TOOL, [cfg, '--quiet', '--method', 'enet'])
    assert res.returncode == 0, res.output[-3000:]
    assert 'ClassWeightedCrossEntropyLoss' in res.output
    assert 'model.auxiliary_head.loss_decode.class_weight=[' in res.output
    assert snapshot([root, cfg]) == before
