"""tools/check_dataset.py under bad input (docs/reliability.md).

A bad data file never stops the sweep: it is named with its finding, the
other files are still checked, every bad file is listed at the end and
the exit status is 1. A bad config or option is one ``error:`` line.
"""
import glob
import os
import os.path as osp

import bad_files as bf
import cv2
import numpy as np
import pytest

TOOL = 'tools/check_dataset.py'
CFG = osp.abspath(
    'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')


@pytest.fixture
def data(tmp_path):
    """A tiny Cityscapes (6 train pairs) and a config pointing at it."""
    from mmseg_sctnet.datasets import make_cityscapes
    root = make_cityscapes(
        str(tmp_path / 'city'), n_train=6, n_val=2, size=(64, 128))
    cfg = bf.text(
        tmp_path / 'my_city.py', f"_base_ = ['{CFG}']\n"
        f"train_dataloader = dict(dataset=dict(data_root='{root}'))\n"
        f"val_dataloader = dict(dataset=dict(data_root='{root}'))\n")
    return root, cfg


def _train(root, kind):
    pattern = {
        'img': 'leftImg8bit/train/*/*_leftImg8bit.png',
        'lbl': 'gtFine/train/*/*_labelTrainIds.png'
    }[kind]
    return sorted(glob.glob(osp.join(root, pattern)))


def test_bad_files_are_named_and_the_sweep_finishes(fault_fork, data):
    root, cfg = data
    imgs, lbls = _train(root, 'img'), _train(root, 'lbl')
    bad = {}
    bf.empty(imgs[0])
    bad[imgs[0]] = 'unreadable'
    with open(lbls[1], 'rb') as f:
        head = f.read(60)
    with open(lbls[1], 'wb') as f:
        f.write(head)  # truncated PNG
    bad[lbls[1]] = 'unreadable'
    missing = lbls[2]
    os.unlink(missing)
    bad[missing] = 'missing_label'
    cv2.imwrite(lbls[3], np.zeros((32, 64), np.uint8))  # half the size
    bad[lbls[3]] = 'size_mismatch'
    res = fault_fork.run(
        TOOL, [cfg, '--quiet'],
        keep=[root, cfg],
        mode='batch',
        names=list(bad),
        rc=1)
    listed = res.stdout.split('file(s) with problems:')[1]
    for path, code in bad.items():
        (line, ) = [ln for ln in listed.splitlines() if path in ln]
        assert code in line, line
    assert 'error(s): training on this split would fail' in res.stdout


def test_missing_label_found_with_max_files(fault_fork, data):
    """--max-files decodes a sample, but every entry's files are checked
    for existence."""
    root, cfg = data
    missing = _train(root, 'lbl')[4]
    os.unlink(missing)
    fault_fork.run(
        TOOL, [cfg, '--quiet', '--max-files', '1'],
        keep=[root, cfg],
        mode='batch',
        names=[missing, 'missing_label'],
        rc=1)


@pytest.mark.parametrize('row', [
    'config_is_folder', 'syntax_error', 'not_a_config', 'max_files_0',
    'split_not_configured', 'data_root_missing', 'misspelled_cfg_option'
])
def test_bad_config_or_option(fault_fork, data, tmp_path, row):
    root, cfg = data
    args = [cfg, '--quiet']
    if row == 'config_is_folder':
        args[0], names = root, [root, 'is a folder']
    elif row == 'syntax_error':
        args[0] = bf.text(tmp_path / 'broken.py', 'train_dataloader = dict(\n')
        names = ['broken.py', 'SyntaxError']
    elif row == 'not_a_config':
        args[0] = _train(root, 'lbl')[0]
        names = [args[0], 'not a config']
    elif row == 'max_files_0':
        args += ['--max-files', '0']
        names = ['--max-files', '0']
    elif row == 'split_not_configured':
        args[0] = bf.text(tmp_path / 'no_val.py',
                          f"_base_ = ['{cfg}']\nval_dataloader = None\n")
        args += ['--split', 'val']
        names = ['val_dataloader']
    elif row == 'misspelled_cfg_option':
        args += ['--cfg-options',
                 f'train_dataloader.dataset.data_rot={tmp_path}/nowhere']
        names = ["'train_dataloader.dataset.data_rot'",
                 "did you mean 'train_dataloader.dataset.data_root'?"]
    else:
        args += ['--cfg-options',
                 f'train_dataloader.dataset.data_root={tmp_path}/nowhere']
        names = [f'{tmp_path}/nowhere']
    fault_fork.run(TOOL, args, keep=[tmp_path], names=names, rc=1)


def test_missing_config_fresh_interpreter(fault, tmp_path):
    fault.run(TOOL, [tmp_path / 'city.py'], names=['city.py'], rc=1)
