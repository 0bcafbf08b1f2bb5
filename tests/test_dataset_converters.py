"""tools/dataset_converters on small inputs in the real raw formats.

Expected train ids come from the datasets' published label tables
(Cityscapes labels.py trainIds; COCO-Stuff class ids and the class order of
MMSegmentation's COCOStuffDataset), not from the converters.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from helpers.tools import load_tool

# Cityscapes (name, labelId, trainId) from the official label table.
CS = {
    'unlabeled': (0, 255),
    'ego vehicle': (1, 255),
    'static': (4, 255),
    'road': (7, 0),
    'sidewalk': (8, 1),
    'building': (11, 2),
    'pole': (17, 5),
    'vegetation': (21, 8),
    'sky': (23, 10),
    'person': (24, 11),
    'car': (26, 13),
    'bicycle': (33, 18),
}


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# (label in the json, rectangle) drawn in this order, later on top
POLYGONS = [
    ('sky', (0, 0, 63, 9)),
    ('building', (0, 10, 63, 19)),
    ('road', (0, 20, 63, 31)),
    ('ego vehicle', (50, 26, 63, 31)),
    ('cargroup', (4, 21, 19, 29)),  # '...group' -> car
    ('license plate', (8, 25, 12, 27)),  # id -1: not drawn, car stays
    ('person', (30, 12, 35, 28)),
    ('bicycle', (40, 22, 47, 29)),
]
# interiors (1 px inside, PIL fills polygon borders too) and expected ids
EXPECT_JSON = [
    ((2, 1, 61, 8), 10),
    ((2, 11, 28, 18), 2),
    ((2, 30, 3, 30), 0),
    ((21, 21, 28, 30), 0),
    ((51, 27, 62, 30), 255),
    ((5, 22, 18, 28), 13),
    ((31, 13, 34, 27), 11),
    ((41, 23, 46, 28), 18),
]


def _write_cityscapes_raw(root):
    """One image with polygons (train) and one with labelIds only (val)."""
    gt = osp.join(root, 'gtFine')
    stem_t = osp.join(gt, 'train', 'aachen', 'aachen_000000_000019')
    os.makedirs(osp.dirname(stem_t))
    ann = dict(
        imgHeight=32,
        imgWidth=64,
        objects=[dict(label=lab, polygon=_rect(*r)) for lab, r in POLYGONS])
    with open(stem_t + '_gtFine_polygons.json', 'w') as f:
        json.dump(ann, f)
    stem_v = osp.join(gt, 'val', 'bremen', 'bremen_000001_000042')
    os.makedirs(osp.dirname(stem_v))
    ids = np.zeros((16, 32), np.uint8)  # unlabeled
    ids[:, 0:4] = CS['road'][0]
    ids[:, 4:8] = CS['car'][0]
    ids[:, 8:12] = CS['static'][0]
    ids[:, 12:16] = CS['bicycle'][0]
    ids[:, 16:20] = CS['vegetation'][0]
    ids[:, 20:24] = CS['pole'][0]
    cv2.imwrite(stem_v + '_gtFine_labelIds.png', ids)
    expect_v = np.full((16, 32), 255, np.uint8)
    for x0, name in ((0, 'road'), (4, 'car'), (12, 'bicycle'),
                     (16, 'vegetation'), (20, 'pole')):
        expect_v[:, x0:x0 + 4] = CS[name][1]
    for split, stem, hw in (('train', stem_t, (32, 64)), ('val', stem_v,
                                                           (16, 32))):
        img = osp.join(root, 'leftImg8bit', split,
                       osp.relpath(stem, osp.join(gt, split)) +
                       '_leftImg8bit.png')
        os.makedirs(osp.dirname(img), exist_ok=True)
        cv2.imwrite(img, np.full(hw + (3, ), 128, np.uint8))
    return stem_t, stem_v, expect_v


def test_cityscapes_converter_polygons_and_label_ids(tmp_path):
    conv = load_tool('dataset_converters/cityscapes.py')
    root = str(tmp_path / 'cityscapes')
    stem_t, stem_v, expect_v = _write_cityscapes_raw(root)
    conv.main([root])

    out_t = cv2.imread(stem_t + '_gtFine_labelTrainIds.png',
                       cv2.IMREAD_UNCHANGED)
    assert out_t.shape == (32, 64) and out_t.dtype == np.uint8
    for (x0, y0, x1, y1), tid in EXPECT_JSON:
        region = out_t[y0:y1 + 1, x0:x1 + 1]
        assert (region == tid).all(), ((x0, y0, x1, y1), tid,
                                       np.unique(region))
    assert set(np.unique(out_t)) <= {0, 2, 10, 11, 13, 18, 255}
    out_v = cv2.imread(stem_v + '_gtFine_labelTrainIds.png',
                       cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out_v, expect_v)
    with open(osp.join(root, 'train.txt')) as f:
        assert f.read().split() == ['aachen/aachen_000000_000019']
    with open(osp.join(root, 'val.txt')) as f:
        assert f.read().split() == ['bremen/bremen_000001_000042']

    # MMSegmentation's CityscapesDataset reads the result as is
    from mmseg.datasets import CityscapesDataset
    ds = CityscapesDataset(
        data_root=root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[dict(type='LoadAnnotations')])
    np.testing.assert_array_equal(ds[0]['gt_seg_map'], expect_v)

    # existing outputs are kept unless --force
    marker = np.full_like(out_v, 7)
    cv2.imwrite(stem_v + '_gtFine_labelTrainIds.png', marker)
    conv.main([root])
    kept = cv2.imread(stem_v + '_gtFine_labelTrainIds.png',
                      cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(kept, marker)
    conv.main([root, '--force', '--nproc', '2'])
    redone = cv2.imread(stem_v + '_gtFine_labelTrainIds.png',
                        cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(redone, expect_v)


def test_cityscapes_converter_errors(tmp_path, capsys):
    conv = load_tool('dataset_converters/cityscapes.py')
    with pytest.raises(SystemExit) as e:
        conv.main([str(tmp_path / 'nothing')])
    assert e.value.code == 1 and 'gtFine' in capsys.readouterr().err
    stem = tmp_path / 'cs' / 'gtFine' / 'train' / 'x' / 'x_000000_000000'
    stem.parent.mkdir(parents=True)
    with open(str(stem) + '_gtFine_polygons.json', 'w') as f:
        json.dump(
            dict(
                imgHeight=8,
                imgWidth=8,
                objects=[dict(label='spaceship', polygon=_rect(0, 0, 3, 3))]),
            f)
    assert conv.main([str(tmp_path / 'cs')]) == 1  # the bad one skipped
    out = capsys.readouterr().out
    assert 'skipped ' + str(stem) + '_gtFine_polygons.json' in out
    assert "'spaceship'" in out
    assert not os.path.exists(str(stem) + '_gtFine_labelTrainIds.png')


# COCO-Stuff class id -> (train id, class name in COCOStuffDataset order)
COCO = {
    1: (1, 'person'),
    3: (3, 'car'),
    11: (11, 'fire hydrant'),
    13: (12, 'stop sign'),  # id 12 is unused in COCO
    27: (25, 'backpack'),  # 26 unused
    90: (80, 'toothbrush'),  # last thing class
    92: (81, 'banner'),  # first stuff class (91 unused)
    182: (171, 'wood'),  # last class
}


def test_coco_stuff10k_converter(tmp_path):
    from scipy.io import savemat
    conv = load_tool('dataset_converters/coco_stuff10k.py')
    src = tmp_path / 'cocostuff-10k-v1.1'
    for d in ('images', 'annotations', 'imageLists'):
        (src / d).mkdir(parents=True)
    ids = sorted(COCO) + [0, 12, 91, 200]  # 12/91 unused, 200 invalid
    names = {'train': ['COCO_train2014_000000000077'],
             'test': ['COCO_train2014_000000000139']}
    rng = np.random.RandomState(0)
    labels = {}
    for split, lst in names.items():
        with open(src / 'imageLists' / f'{split}.txt', 'w') as f:
            f.writelines(n + '\n' for n in lst)
        for n in lst:
            lab = np.array(ids, np.uint16)[rng.randint(0, len(ids), (6, 16))]
            lab[0, :len(ids)] = ids  # every id at least once
            labels[n] = lab
            savemat(str(src / 'annotations' / f'{n}.mat'),
                    dict(S=lab, names=np.array(['x'], dtype=object)))
            cv2.imwrite(str(src / 'images' / f'{n}.jpg'),
                        rng.randint(0, 255, (6, 16, 3)).astype(np.uint8))
    out = tmp_path / 'coco_stuff10k'
    conv.main([str(src), '-o', str(out)])

    from mmseg.datasets import COCOStuffDataset
    classes = COCOStuffDataset.METAINFO['classes']
    for split, folder in (('train', 'train2014'), ('test', 'test2014')):
        n = names[split][0]
        assert (out / 'images' / folder / f'{n}.jpg').is_file()
        got = cv2.imread(
            str(out / 'annotations' / folder / f'{n}_labelTrainIds.png'),
            cv2.IMREAD_UNCHANGED)
        lab = labels[n]
        for cid, (tid, name) in COCO.items():
            assert (got[lab == cid] == tid).all(), cid
            assert classes[tid - 1] == name
        for cid in (0, 12, 91, 200):
            assert (got[lab == cid] == 0).all(), cid
        # read back through MMSegmentation with the configs' settings
        ds = COCOStuffDataset(
            data_root=str(out),
            reduce_zero_label=True,
            data_prefix=dict(
                img_path=f'images/{folder}',
                seg_map_path=f'annotations/{folder}'),
            pipeline=[dict(type='LoadAnnotations', reduce_zero_label=True)])
        seg = ds[0]['gt_seg_map']
        for cid, (tid, name) in COCO.items():
            assert {classes[i] for i in np.unique(seg[lab == cid])} == {name}
        assert (seg[np.isin(lab, (0, 12, 91, 200))] == 255).all()
