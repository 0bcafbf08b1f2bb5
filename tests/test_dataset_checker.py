"""The dataset checker: each fault, one at a time, on generated data.

Generated Cityscapes / ADE20K / custom layouts (mmseg_sctnet.datasets) are
read by the real MMSegmentation dataset classes; one file or setting is then
broken and the report must name the right file and fault. Clean data must
pass. Training refuses to start on errors (and on warnings unless allowed).
"""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from helpers.models import CITY_CONFIG
from helpers.tools import load_tool
from helpers.reliability import tiny_train_config

from mmseg_sctnet.io.errors import DatasetCheckError
from mmseg_sctnet.datasets import (CLASSES_STREET, check_config, check_dataset,
                                   make_ade20k, make_cityscapes, make_custom)
from mmseg_sctnet.datasets.checker import build_split_dataset, check_data_paths

ADE_CONFIG = 'configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py'


def city_cfg(root, **dataset):
    cfg = Config.fromfile(CITY_CONFIG['S'])
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.dataset.update(dataset)
    return cfg


def custom_dataset(root, num_classes=8, **kw):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    classes = CLASSES_STREET if num_classes == 8 else tuple(
        f'c{i}' for i in range(num_classes))
    cfg = dict(
        type='BaseSegDataset',
        data_root=root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        metainfo=dict(classes=classes),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations')
        ])
    cfg.update(kw)
    return DATASETS.build(cfg)


def labels(root, sub='ann_dir/train', suffix='.png'):
    out = []
    for d, _, files in os.walk(osp.join(root, sub)):
        out += [osp.join(d, f) for f in files if f.endswith(suffix)]
    return sorted(out)


def city_image(label_path):
    """The Cityscapes image of a ``*_gtFine_labelTrainIds.png`` file."""
    d, name = osp.split(label_path)
    d = d.replace(osp.sep + 'gtFine' + osp.sep,
                  osp.sep + 'leftImg8bit' + osp.sep)
    return osp.join(
        d, name.replace('_gtFine_labelTrainIds.png', '_leftImg8bit.png'))


def rewrite_labels(root, fn, sub='ann_dir/train'):
    for p in labels(root, sub):
        lbl = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(p, fn(lbl))


@pytest.fixture
def city(tmp_path):
    return make_cityscapes(
        str(tmp_path / 'city'), n_train=6, n_val=2, size=(64, 128))


@pytest.fixture
def custom(tmp_path):
    return make_custom(
        str(tmp_path / 'custom'), n_train=6, n_val=2, size=(64, 96))


def only(report, code):
    assert report.codes() == [code], report.format()
    return report.findings[0]


# ---------------------------------------------------------------- clean
def test_clean_data_passes(city, custom, tmp_path):
    r = check_config(city_cfg(city), 'train')
    assert r.ok() and r.findings == [] and r.num_decoded == 6, r.format()
    assert 0 < r.label_fractions[255] < 0.5  # the thin ignore band only
    ade = make_ade20k(str(tmp_path / 'ade'), n_train=4, n_val=2, size=(64, 64))
    cfg = Config.fromfile(ADE_CONFIG)
    cfg.train_dataloader.dataset.data_root = ade
    r = check_config(cfg, 'train')
    assert r.ok() and r.findings == [], r.format()
    r = check_dataset(custom_dataset(custom), num_classes=8)
    assert r.ok() and r.findings == [], r.format()


# ---------------------------------------------------------- file pairing
def test_image_without_label(city):
    lbl = sorted(labels(city, 'gtFine/train', '_labelTrainIds.png'))[2]
    os.remove(lbl)
    f = only(check_config(city_cfg(city)), 'missing_label')
    assert f.level == 'error' and f.files == [lbl]
    img = city_image(lbl)
    assert img in f.message and lbl in f.message
    assert "'_gtFine_labelTrainIds.png'" in f.message  # says how it looked


def test_label_without_image(city):
    lbl = sorted(labels(city, 'gtFine/train', '_labelTrainIds.png'))[1]
    os.remove(city_image(lbl))
    r = check_config(city_cfg(city))
    f = only(r, 'label_without_image')
    assert f.level == 'warning' and f.files == [lbl] and lbl in f.message
    assert not r.ok() and r.ok(allow_warnings=True)


def test_size_mismatch(custom):
    p = labels(custom)[3]
    lbl = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(p, cv2.resize(lbl, (48, 32), interpolation=cv2.INTER_NEAREST))
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'size_mismatch')
    assert f.files == [p] and '48x32' in f.message and '96x64' in f.message


def test_unreadable_image_and_label(custom):
    img = sorted(os.listdir(osp.join(custom, 'img_dir/train')))[0]
    img = osp.join(custom, 'img_dir/train', img)
    with open(img, 'wb') as f:
        f.write(b'not a jpeg at all')
    lbl = labels(custom)[4]
    data = open(lbl, 'rb').read()
    with open(lbl, 'wb') as f:
        f.write(data[:40])  # truncated PNG
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'unreadable')
    assert sorted(f.files) == sorted([img, lbl])
    assert img in f.message and lbl in f.message and 'Re-copy' in f.message


def test_colour_label(custom):
    p = labels(custom)[0]
    lbl = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(p, np.stack([lbl] * 3, -1))
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'colour_label')
    assert f.files == [p] and 'single-channel' in f.message


# ------------------------------------------------------------ label values
def test_cityscapes_label_ids_by_suffix(city):
    f = only(
        check_config(city_cfg(city, seg_map_suffix='_gtFine_labelIds.png')),
        'cityscapes_label_ids')
    assert f.level == 'error' and 'labelTrainIds' in f.message
    assert '26' in f.message and 'createTrainIdLabelImgs' in f.message
    assert f.files[0].endswith('_gtFine_labelIds.png')


def test_cityscapes_label_ids_by_values(city):
    """labelIds content saved under the labelTrainIds name."""
    for p in labels(city, 'gtFine/train', '_labelTrainIds.png'):
        ids = cv2.imread(
            p.replace('labelTrainIds', 'labelIds'), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(p, ids)
    f = only(check_config(city_cfg(city)), 'cityscapes_label_ids')
    assert 'look like Cityscapes labelIds' in f.message
    assert len(f.files) == 6


def test_value_outside_num_classes(custom):
    p = labels(custom)[2]
    lbl = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    lbl[:4, :4] = 50
    cv2.imwrite(p, lbl)
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8),
        'label_out_of_range')
    assert f.files == [p] and '[50]' in f.message
    assert 'num_classes=8' in f.message and '0..7' in f.message


def test_one_based_labels_without_reduce_zero_label(custom):
    # ADE-style: 0 = other, classes 1..8, no 255
    rewrite_labels(custom, lambda l: np.where(l == 255, 0, l + 1))
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8),
        'reduce_zero_label_needed')
    assert 'reduce_zero_label=True' in f.message and len(f.files) >= 1


def test_reduce_zero_label_on_zero_based_data(custom):
    r = check_dataset(
        custom_dataset(custom, reduce_zero_label=True), num_classes=8)
    f = only(r, 'reduce_zero_label_on_zero_based')
    assert f.level == 'warning' and 'reduce_zero_label=False' in f.message


def test_ade20k_without_reduce_zero_label(tmp_path):
    ade = make_ade20k(str(tmp_path / 'ade'), n_train=4, n_val=1, size=(64, 64))
    cfg = Config.fromfile(ADE_CONFIG)
    cfg.train_dataloader.dataset.data_root = ade
    cfg.train_dataloader.dataset.reduce_zero_label = False
    # the pipeline still says True: mmseg would assert on the first label
    r = check_config(cfg)
    assert r.codes() == [
        'reduce_zero_label_conflict', 'reduce_zero_label_off'
    ], r.format()
    assert 'LoadAnnotations' in r.findings[0].message
    cfg.train_dataloader.dataset.pipeline[1].reduce_zero_label = False
    f = only(check_config(cfg), 'reduce_zero_label_off')
    assert f.level == 'warning' and 'ADE20KDataset' in f.message


def test_nearly_everything_ignored(custom):

    def mostly_void(l):
        out = np.full_like(l, 255)
        out[0, 0] = 1
        return out

    rewrite_labels(custom, mostly_void)
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'mostly_ignored')
    assert 'loss_ce ~0' in f.message and 'accuracy 100' in f.message
    assert '99.9%' in f.message or '100.0%' in f.message


def test_binary_masks_saved_as_0_255(custom):
    # foreground (road) saved as 255, background 0, num_classes=2
    rewrite_labels(custom, lambda l: np.where(l == 0, 255, 0).astype(l.dtype))
    f = only(
        check_dataset(custom_dataset(custom, num_classes=2), num_classes=2),
        'binary_mask_255')
    assert 'mask // 255' in f.message and 'accuracy 100' in f.message


def test_model_num_classes_differs_from_dataset(custom):
    f = only(
        check_dataset(custom_dataset(custom), num_classes=19),
        'num_classes_mismatch')
    assert 'num_classes=19' in f.message and '8 classes' in f.message


def test_empty_split(city, custom):
    # an empty split file (MMEngine alone: "need at least one array to
    # concatenate" while building the dataset)
    split = osp.join(city, 'empty.txt')
    open(split, 'w').close()
    r = check_config(city_cfg(city, ann_file=split))
    f = only(r, 'empty_split')
    assert f.level == 'error' and r.num_entries == 0
    assert split in f.message and 'data_prefix' in f.message
    # a folder without a file of the image suffix (the images are .jpg)
    r = check_dataset(
        custom_dataset(custom, img_suffix='.png', serialize_data=False))
    f = only(r, 'empty_split')
    assert osp.join(custom, 'img_dir/train') in f.message
    assert "'.png'" in f.message


def test_split_file_names_a_missing_image(custom):
    img_dir = osp.join(custom, 'img_dir/train')
    names = sorted(n[:-len('.jpg')] for n in os.listdir(img_dir))
    shutil.copy(labels(custom)[0], osp.join(custom, 'ann_dir/train/x9.png'))
    split = osp.join(custom, 'train.txt')
    with open(split, 'w') as f:
        f.write('\n'.join(names[:3] + ['x9'] + names[3:]) + '\n')
    r = check_dataset(custom_dataset(custom, ann_file=split), num_classes=8)
    f = only(r, 'missing_image')
    ghost = osp.join(img_dir, 'x9.jpg')
    assert f.level == 'error' and f.files == [ghost]
    assert ghost in f.message and split in f.message
    assert r.num_decoded == len(names)  # the other entries are still read


def test_16bit_label_values_above_255(custom):
    same, wraps = labels(custom)[1:3]
    # a 16-bit PNG with 8-bit values loads exactly: no finding
    cv2.imwrite(same, cv2.imread(same, cv2.IMREAD_UNCHANGED).astype('uint16'))
    lbl = cv2.imread(wraps, cv2.IMREAD_UNCHANGED).astype('uint16')
    lbl[:4, :4] = 259  # read as 259 % 256 = 3, a valid class: looks fine
    cv2.imwrite(wraps, lbl)
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8),
        'label_not_8bit')
    assert f.level == 'error' and f.files == [wraps]
    assert '16-bit PNG, max 259' in f.message and '8-bit PNG' in f.message


def test_lossy_jpeg_labels(custom):
    # by suffix: every label saved as .jpg
    for p in labels(custom):
        cv2.imwrite(p[:-4] + '.jpg', cv2.imread(p, cv2.IMREAD_UNCHANGED))
        os.remove(p)
    f = only(
        check_dataset(
            custom_dataset(custom, seg_map_suffix='.jpg'), num_classes=8),
        'lossy_labels')
    assert f.level == 'error' and len(f.files) == 6
    assert 'JPEG' in f.message and 'Save labels as PNG' in f.message


def test_lossy_label_under_a_png_name(custom):
    # by header: JPEG bytes in a .png file (what some export tools do)
    p = labels(custom)[4]
    ok, data = cv2.imencode('.jpg', cv2.imread(p, cv2.IMREAD_UNCHANGED))
    with open(p, 'wb') as f:
        f.write(data.tobytes())
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'lossy_labels')
    assert f.files == [p] and p in f.message


def test_label_file_entirely_ignored(custom):
    p = labels(custom)[3]
    cv2.imwrite(p, np.full_like(cv2.imread(p, cv2.IMREAD_UNCHANGED), 255))
    r = check_dataset(custom_dataset(custom), num_classes=8)
    f = only(r, 'fully_ignored_files')
    assert f.level == 'warning' and f.files == [p] and p in f.message
    assert r.ok(allow_warnings=True)


def test_every_labelled_pixel_is_one_class(custom):
    rewrite_labels(custom,
                   lambda l: np.where(l == 255, 255, 3).astype(l.dtype))
    f = only(
        check_dataset(custom_dataset(custom), num_classes=8), 'single_class')
    assert f.level == 'warning' and 'class 3 (pole)' in f.message


def test_values_are_those_the_dataset_pipeline_loads(tmp_path):
    """reduce_zero_label and a label_map (a class subset of ADE20K): the
    checker's label shares equal the labels the dataset's own pipeline
    produces."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ade = make_ade20k(str(tmp_path / 'ade'), n_train=3, n_val=1, size=(64, 64))
    ds = DATASETS.build(
        dict(
            type='ADE20KDataset',
            data_root=ade,
            data_prefix=dict(
                img_path='images/training',
                seg_map_path='annotations/training'),
            metainfo=dict(classes=('building', 'sky', 'road', 'person')),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', reduce_zero_label=True)
            ]))
    assert ds.label_map and ds.reduce_zero_label
    r = check_dataset(ds)
    seen = np.zeros(256, np.int64)
    for i in range(len(ds)):
        seen += np.bincount(ds[i]['gt_seg_map'].ravel(), minlength=256)
    expected = {int(v): seen[v] / seen.sum() for v in np.nonzero(seen)[0]}
    assert r.label_fractions.keys() == expected.keys() == {0, 1, 2, 3, 255}
    assert all(
        r.label_fractions[v] == pytest.approx(p)
        for v, p in expected.items())
    assert r.codes() == []


def test_missing_data_root_and_folders(tmp_path, city):
    with pytest.raises(DatasetCheckError, match='nowhere'):
        build_split_dataset(city_cfg(str(tmp_path / 'nowhere')), 'train')
    cfg = city_cfg(
        city,
        data_prefix=dict(
            img_path='leftImg8bit/training', seg_map_path='gtFine/train'))
    with pytest.raises(DatasetCheckError, match='leftImg8bit/training'):
        build_split_dataset(cfg, 'train')
    cfg = city_cfg(city, img_suffix='.jpg')
    with pytest.raises(DatasetCheckError, match="no file ending in '.jpg'"):
        check_data_paths(cfg)


# -------------------------------------------------------------- the tool
def test_check_dataset_tool(city, capsys):
    tool = load_tool('check_dataset')
    cfg = city_cfg(city)
    path = osp.join(osp.dirname(city), 'cfg.py')
    cfg.dump(path)
    assert tool.main([path, '--quiet']) == 0
    out = capsys.readouterr().out
    assert 'No problems found' in out and '255: ' in out
    lbl = labels(city, 'gtFine/train', '_labelTrainIds.png')[0]
    os.remove(lbl)
    assert tool.main([path, '--quiet', '--max-files', '2']) == 1
    out = capsys.readouterr().out
    assert 'missing_label' in out and lbl in out
    with pytest.raises(SystemExit) as e:
        tool.main([path + '.nope'])
    assert e.value.code == 1
    assert 'config file not found' in capsys.readouterr().err


# ------------------------------------------------- training start (hook)
def _runner(tmp_path, data, **extra):
    from mmengine.runner import Runner
    os.makedirs(tmp_path, exist_ok=True)
    cfg = Config.fromfile(
        tiny_train_config(
            str(tmp_path / 'cfg.py'), data, max_iters=1, ckpt_interval=1))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.merge_from_dict(extra)
    return Runner.from_cfg(cfg)


def test_training_refuses_to_start_on_errors(tmp_path, city):
    lbl = labels(city, 'gtFine/train', '_labelTrainIds.png')[0]
    ids = cv2.imread(
        lbl.replace('labelTrainIds', 'labelIds'), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(lbl, ids)
    runner = _runner(
        tmp_path, city, dataset_check=dict(allow_warnings=True, num_samples=6))
    with pytest.raises(DatasetCheckError) as e:
        runner.train()
    msg = str(e.value)
    assert msg.startswith('Training refused to start') and lbl in msg
    assert 'labelIds' in msg and 'tools/check_dataset.py' in msg
    assert not os.path.exists(tmp_path / 'work' / 'iter_1.pth')


def test_training_stops_on_warnings_unless_allowed(tmp_path, city):
    lbl = labels(city, 'gtFine/train', '_labelTrainIds.png')[0]
    os.remove(city_image(lbl))
    with pytest.raises(DatasetCheckError, match='--allow-dataset-warnings'):
        _runner(tmp_path / 'a', city).train()
    runner = _runner(
        tmp_path / 'b', city, dataset_check=dict(allow_warnings=True))
    runner.train()
    assert runner.iter == 1
