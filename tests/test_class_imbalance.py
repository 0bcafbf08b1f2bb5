"""Class imbalance: ``tools/class_weights.py`` and the variants of
``configs/custom/`` with class weights and with OHEM.

The weights are checked against an independent count of the generated
label files (read with OpenCV, the demo's 8-class subset mapped from the
Cityscapes train ids written out below) and the two formulas written out
again; the variants' decode-head loss against an independent weighted CE
and an independent OHEM selection, and each variant trains two iterations
of tools/train.py on generated demo data.
"""
import argparse
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.models import build_cfg_model
from helpers.tools import load_tool
from mmengine.config import Config, DictAction
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_sctnet.datasets import make_cityscapes
from mmseg_sctnet.datasets.class_weights import report_class_weights
from mmseg_sctnet.io.config import load_config

DEMO = 'configs/demo/sctnet-s_demo_cityscapes.py'
OFFICIAL = 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py'
WEIGHTED = 'configs/custom/sctnet-s_class-weights_demo.py'
OHEM = 'configs/custom/sctnet-s_ohem_demo.py'
#: Cityscapes train id -> index in the demo's 8 classes (road, sidewalk,
#: building, pole, vegetation, sky, person, car); other ids are ignored
DEMO_INDEX = {0: 0, 1: 1, 2: 2, 5: 3, 8: 4, 10: 5, 11: 6, 13: 7}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_cityscapes(str(tmp_path_factory.mktemp('imb') / 'data'),
                           n_train=5, n_val=1, size=(64, 128), seed=2)


def _independent_counts(data, mapping, k):
    pixels = np.zeros(k, np.int64)
    image_pixels = np.zeros(k, np.int64)
    for f in sorted(glob.glob(osp.join(data, 'gtFine', 'train', '*',
                                       '*_gtFine_labelTrainIds.png'))):
        ids = cv2.imread(f, cv2.IMREAD_UNCHANGED)
        own = np.array([sum(int((ids == t).sum())
                            for t, c in mapping.items() if c == cls)
                        for cls in range(k)])
        pixels += own
        image_pixels[own > 0] += own.sum()
    return pixels, image_pixels


@pytest.mark.parametrize('config,mapping,k', [
    (DEMO, DEMO_INDEX, 8),
    (OFFICIAL, {t: t for t in range(19)}, 19),
], ids=['demo-8-classes', 'cityscapes-19'])
def test_weights_match_an_independent_count(config, mapping, k, data,
                                            capsys):
    pixels, image_pixels = _independent_counts(data, mapping, k)
    present = pixels > 0
    assert present.sum() >= 6
    if k == 19:
        assert not present.all()  # absent classes: weight 0
    p = pixels / pixels.sum()
    f = np.where(present, pixels / np.maximum(image_pixels, 1), 0)
    median = np.zeros(k)
    median[present] = np.median(f[present]) / f[present]
    enet = np.zeros(k)
    enet[present] = 1 / np.log(1.02 + p[present])
    files = sorted(glob.glob(osp.join(data, '**', '*.png'), recursive=True))
    before = [open(f, 'rb').read() for f in files + [config]]
    opts = {'train_dataloader.dataset.data_root': data}
    for method, raw in (('median', median), ('enet', enet)):
        res = report_class_weights(config, method=method, normalize=False,
                                   cfg_options=opts, progress=False)
        assert res['pixels'] == pixels.tolist()
        np.testing.assert_allclose(res['weights'], raw, rtol=1e-12)
        res = report_class_weights(config, method=method, cfg_options=opts,
                                   progress=False)
        scaled = raw / (p * raw).sum()
        np.testing.assert_allclose(res['weights'], scaled, rtol=1e-12)
        assert (p * np.array(res['weights'])).sum() == pytest.approx(1.0)
        out = capsys.readouterr().out
        for c, name in enumerate(res['classes']):
            assert f'{pixels[c]:,}' in out and f'{scaled[c]:.4f}' in out
        # the printed --cfg-options put the weights into both CE losses
        cfg = load_config(config, _parse(res['cfg_options'].split()))
        for head in ('decode_head', 'auxiliary_head'):
            loss = cfg.model[head].loss_decode
            assert loss.type == 'ClassWeightedCrossEntropyLoss'
            np.testing.assert_allclose(loss.class_weight, scaled, atol=5e-5)
    assert [open(f, 'rb').read() for f in files + [config]] == before


def _parse(args):
    p = argparse.ArgumentParser()
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(['--cfg-options', *args]).cfg_options


def _samples(labels):
    out = []
    for lab in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=lab[None])
        s.set_metainfo(dict(img_shape=lab.shape, ori_shape=lab.shape))
        out.append(s)
    return out


def _head_inputs(seed=0, n=2, h=128, w=256, k=8):
    """Labels constant over 8x8 blocks with an ignored band, and logits at
    1/8 that are confident and right on the left half, random elsewhere
    (hard pixels)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, k, (n, h // 8, w // 8), generator=g)
    labels = small.repeat_interleave(8, 1).repeat_interleave(8, 2)
    labels[:, :8] = 255
    logits = torch.randn(n, k, h // 8, w // 8, generator=g)
    confident = F.one_hot(small, k).permute(0, 3, 1, 2) * 6.0
    logits[..., :w // 16] += confident[..., :w // 16]
    return logits, labels


def test_class_weighted_variant_weights_both_heads():
    """Labels with ignored pixels (255): the weighted CE of both heads is
    the weighted mean over the labelled pixels, sum w[y] CE / sum w[y]
    (PyTorch's), times the head's loss weight."""
    cfg = Config.fromfile(WEIGHTED)
    w = torch.tensor(cfg.class_weight)
    model = build_cfg_model(WEIGHTED)
    for head in (model.decode_head, model.auxiliary_head[0]):
        assert type(head.loss_decode).__name__ == \
            'ClassWeightedCrossEntropyLoss'
        assert head.loss_decode.class_weight == cfg.class_weight
    logits, labels = _head_inputs()
    valid = labels != 255
    assert not valid.all()
    for head, scale in ((model.decode_head, 1.0),
                        (model.auxiliary_head[0], 0.4)):
        loss = head.loss_by_feat(logits, _samples(labels))['loss_ce']
        x = F.interpolate(logits.double(), labels.shape[-2:],
                          mode='bilinear', align_corners=False)
        ce = -x.log_softmax(1).gather(1, labels.clamp(max=7)[:, None])[:, 0]
        wy = w.double()[labels.clamp(max=7)] * valid
        ref = scale * (wy * ce).sum() / wy.sum()
        assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
        plain = scale * (ce * valid).sum() / labels.numel()
        assert abs(ref.item() - plain.item()) > 1e-2 * ref.item()


def test_mmseg_cross_entropy_with_class_weight_is_refused():
    """MMSegmentation's CrossEntropyLoss with class_weight fails on the
    first ignored pixel: SCTHead refuses it at build with the fix."""
    from mmseg_sctnet.io.errors import ConfigError
    with pytest.raises(ConfigError, match='ClassWeightedCrossEntropyLoss'):
        build_cfg_model(DEMO, **{
            'model.decode_head.loss_decode.class_weight': [1.0] * 8})


def test_ohem_variant_keeps_the_hard_pixels():
    model = build_cfg_model(OHEM)
    head = model.decode_head
    sampler = head.sampler
    assert type(sampler).__name__ == 'OHEMPixelSampler'
    assert (sampler.thresh, sampler.min_kept) == (0.7, 6000)
    assert model.auxiliary_head[0].sampler is None
    logits, labels = _head_inputs()
    loss = head.loss_by_feat(logits, _samples(labels))['loss_ce']
    # independent OHEM: probability of the true class, kept below
    # max(thresh, the (min_kept * N)-th smallest probability)
    x = F.interpolate(logits, labels.shape[-2:], mode='bilinear',
                      align_corners=False)
    valid = labels != 255
    prob = x.softmax(1).gather(1, labels.clamp(max=7)[:, None])[:, 0]
    ordered = prob[valid].sort().values
    k = min(6000 * labels.shape[0], ordered.numel() - 1)
    keep = valid & (prob < max(ordered[k].item(), 0.7))
    assert 6000 * 2 <= keep.sum() < valid.sum() * 0.9  # easy pixels dropped
    ce = F.cross_entropy(x, labels, ignore_index=255, reduction='none')
    ref = (ce * keep).sum() / labels.numel()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize('config', [WEIGHTED, OHEM],
                         ids=lambda p: osp.basename(p))
def test_variant_trains_on_generated_demo_data(config, data, tmp_path):
    opts = ['model.siam_head.teacher_checkpoint=None',  # random teacher
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1',
            'param_scheduler.0.end=1', 'param_scheduler.1.end=2',
            'train_dataloader.batch_size=2']
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{dl}.dataset.data_root={data}', f'{dl}.num_workers=0',
                 f'{dl}.persistent_workers=False']
    work = str(tmp_path / 'work')
    runner = load_tool('train').main([config, '--work-dir', work,
                                      '--cfg-options'] + opts)
    assert runner.iter == 2 and osp.isfile(osp.join(work, 'iter_2.pth'))
    head = runner.model.decode_head
    if config == WEIGHTED:
        assert head.loss_decode.class_weight == Config.fromfile(
            config).class_weight
    else:
        assert type(head.sampler).__name__ == 'OHEMPixelSampler'
