"""Training crops are padded as the official pipeline pads them.

The official configs run ``Normalize`` and only then ``Pad`` (image 0 after
normalisation, label 255). Here every shipped config's REAL train pipeline
(through the real MMSegmentation dataset class, on generated data in the
real on-disk layout) and its REAL data preprocessor run on an image whose
crop must be padded: a 32x512 image, which every random rescale of these
configs leaves lower than the crop. The padded band must be exactly 0 in
the network input and 255 in the labels, and the rest must be the
normalised image: ``(rgb - mean) / std`` with ImageNet's mean and std,
computed here with numpy.

Test images are never padded: the preprocessor pads only in training.
"""
import numpy as np
import pytest
import torch
from helpers.configs import SHIPPED, config_id, dataset_type, make_data
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # RGB, ImageNet
STD = np.array([58.395, 57.12, 57.375], np.float32)
IMAGE = (32, 512)  # (h, w): lower than the crop after any rescale


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    roots = {}

    def get(cfg):
        kind = dataset_type(cfg)
        if kind not in roots:
            roots[kind] = make_data(cfg, tmp_path_factory.mktemp(kind), IMAGE)
        return roots[kind]

    return get


def _dataset(cfg, split, root):
    ds_cfg = cfg[f'{split}_dataloader'].dataset.copy()
    ds_cfg.data_root = root
    return DATASETS.build(ds_cfg)


@pytest.mark.parametrize('config', SHIPPED, ids=config_id)
def test_training_crops_are_padded_after_normalisation(config, data_roots):
    cfg = Config.fromfile(config)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert not [t for t in pipeline if t['type'] == 'Pad'], \
        'pad in the data preprocessor, after normalisation, not before'
    crop_h, crop_w = next(
        t['crop_size'] for t in pipeline if t['type'] == 'RandomCrop')
    root = data_roots(cfg)
    dataset = _dataset(cfg, 'train', root)
    pre = MODELS.build(cfg.model.data_preprocessor)

    for seed in range(2):  # two random rescales / crops / flips
        np.random.seed(seed)
        sample = dataset[0]
        raw = sample['inputs'].numpy()  # [3, h, w] BGR uint8, unnormalised
        gt = sample['data_samples'].gt_sem_seg.data.numpy()[0]
        h, w = raw.shape[1:]
        assert h < crop_h and w <= crop_w, (h, w)  # this crop needs padding
        out = pre(
            dict(inputs=[sample['inputs']],
                 data_samples=[sample['data_samples']]),
            training=True)
        x = out['inputs'][0].numpy()
        label = out['data_samples'][0].gt_sem_seg.data.numpy()[0]
        assert x.shape == (3, crop_h, crop_w) and label.shape == (crop_h,
                                                                  crop_w)
        pad = np.ones((crop_h, crop_w), bool)
        pad[:h, :w] = False
        assert (x[:, pad] == 0).all(), np.unique(x[:, pad])
        assert (label[pad] == 255).all(), np.unique(label[pad])
        rgb = raw[::-1].astype(np.float32).transpose(1, 2, 0)
        expect = ((rgb - MEAN) / STD).transpose(2, 0, 1)
        np.testing.assert_allclose(x[:, :h, :w], expect, rtol=0, atol=1e-5)
        assert (label[:h, :w] == gt).all()
        assert out['data_samples'][0].pad_shape == (crop_h, crop_w)


@pytest.mark.parametrize(
    'config', [SHIPPED[0], SHIPPED[-1]], ids=config_id)
def test_test_images_are_not_padded(config, data_roots):
    """``mode='whole'`` sees the resized test image as it is: a 32x512 image
    resized for testing is lower than the crop size and must stay so."""
    cfg = Config.fromfile(config)
    sample = _dataset(cfg, 'test', data_roots(cfg))[0]
    pre = MODELS.build(cfg.model.data_preprocessor)
    out = pre(
        dict(inputs=[sample['inputs']],
             data_samples=[sample['data_samples']]),
        training=False)
    assert out['inputs'].shape[2:] == sample['inputs'].shape[1:]
    assert out['inputs'].shape[2] < pre.size[0]
    assert torch.isfinite(out['inputs']).all()
