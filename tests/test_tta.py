"""``tools/test.py CONFIG CKPT --tta`` on every shipped config.

Every config carries a TTA pipeline (the ``ScaleFlipTTA`` that
``mmseg_sctnet.engine.evaluation_run.tta_pipeline`` builds from its test
pipeline): MMSegmentation's ratios (0.5 to 1.75)
and flips (off, on) around the config's own test scale (Cityscapes Seg50
1024x512, Seg75 1536x768, Seg100 2048x1024, ...). For each config, on
generated data in its real layout, the test split is read through the
config's TTA pipeline and the model is wrapped in its ``tta_model`` as
``tools/test.py --tta`` does; one image goes through ``test_step``: the
merged prediction must be the mean probability of the views run one by one,
and the metric must equal an independent IoU computation. To keep this cheap
on a CPU the test scale is divided by a factor (ratios, flips and order
unchanged). Every config carries that TTA as its ``tta_pipeline``, which
MMSegmentation's own test.py reads; tests/test_stock_scripts.py runs the real
``tools/test.py --tta`` and the stock one on the demo config at its real
scales.
"""
import copy

import numpy as np
import pytest
import torch
from helpers.configs import SHIPPED, config_id, make_data, point_to
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS, METRICS, MODELS

from mmseg_sctnet.datasets.tta import scale_flip_stages
from mmseg_sctnet.engine.evaluation_run import tta_pipeline
from mmseg_sctnet.io.errors import ConfigError

RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # MMSegmentation's TTA ratios
IMAGE = (64, 128)  # (h, w) of the generated images


def _tta_transforms(pipeline):
    """The ``TestTimeAug`` stages the pipeline's ``ScaleFlipTTA`` runs."""
    load, tta = pipeline
    assert load['type'] == 'LoadImageFromFile'
    assert tta['type'] == 'ScaleFlipTTA'
    return scale_flip_stages(tta['resize'], tta['img_ratios'], tta['then'])


def _keep_ratio_size(image, scale):
    """(h, w) of ``image`` (h, w) after ``Resize(scale=(w, h),
    keep_ratio=True)``: the largest factor that fits the long side into
    the long edge of ``scale`` and the short side into its short edge."""
    h, w = image
    f = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


def _plain(transform):
    """A transform's arguments (without the scope MMEngine adds to what
    comes from an ``mmseg::`` base)."""
    return {k: v for k, v in transform.items() if k != '_scope_'}


def _as_tools_test_does(cfg):
    """The config as ``tools/test.py --tta`` runs it (and MMSegmentation's
    own tools/test.py): inference model, TTA pipeline, TTA wrapper."""
    cfg.model.train_cfg = None
    cfg.model.backbone.init_cfg = None
    cfg.test_dataloader.dataset.pipeline = tta_pipeline(cfg)
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    return cfg


@pytest.mark.parametrize('config', SHIPPED, ids=config_id)
def test_tta_on_every_shipped_config(config, tmp_path):
    cfg = Config.fromfile(config)
    # the config carries its TTA (MMSegmentation's own test.py --tta reads
    # it as it is), and it is the one built from its test pipeline
    pipeline = cfg.get('tta_pipeline')
    assert pipeline and 'tta_model' in cfg, config_id(config)
    assert pipeline == tta_pipeline(Config(dict(cfg, tta_pipeline=None)))
    scales, flips, load_ann, pack = _tta_transforms(pipeline)
    # multi-scale around this config's test scale, then both flips
    test_scale = next(t['scale'] for t in cfg.test_pipeline
                      if t['type'] == 'Resize')
    assert [t['scale'] for t in scales] == [
        (int(test_scale[0] * r), int(test_scale[1] * r)) for r in RATIOS
    ]
    assert all(t['type'] == 'Resize' and t['keep_ratio'] for t in scales)
    assert [(t['type'], t['prob']) for t in flips] == [('RandomFlip', 0.),
                                                      ('RandomFlip', 1.)]
    test_ann = next(t for t in cfg.test_pipeline
                    if t['type'] == 'LoadAnnotations')
    assert [_plain(t) for t in load_ann] == [_plain(test_ann)]
    assert [_plain(t) for t in pack] == [dict(type='PackSegInputs')]

    # the 1.0 view of a 64x128 image becomes at most 64x128, the 0.5 view
    # 32x64 (the smallest a SegFormer teacher config takes)
    shrink = min(test_scale) / 64
    small = tuple(max(1, round(s / shrink)) for s in test_scale)
    pipeline[1]['resize']['scale'] = small
    cfg.tta_pipeline = pipeline  # a config's own tta_pipeline is used
    point_to(cfg, make_data(cfg, tmp_path, IMAGE, n_train=1, n_val=1))
    cfg = _as_tools_test_does(cfg)

    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    sample = dataset[0]
    assert len(sample['inputs']) == len(RATIOS) * 2  # every scale x flip
    # the views: each ratio of the (shrunk) test scale, unflipped then
    # flipped
    assert [tuple(x.shape[1:]) for x in sample['inputs']] == [
        _keep_ratio_size(IMAGE, (int(small[0] * r), int(small[1] * r)))
        for r in RATIOS for _ in (0, 1)
    ]
    flipped = [s.flip for s in sample['data_samples']]
    assert flipped.count(True) == flipped.count(False) == len(RATIOS)
    model = MODELS.build(copy.deepcopy(cfg.model))
    assert type(model).__name__ == 'SegTTAModel'
    model.eval()
    with torch.no_grad():
        preds = model.test_step(pseudo_collate([sample]))
        # each view alone through the wrapped segmentor: its logits in the
        # original image's frame (resized back, flip undone)
        views = [
            model.module.test_step(
                pseudo_collate([dict(inputs=x, data_samples=d)]))[0]
            for x, d in zip(sample['inputs'], sample['data_samples'])
        ]
    assert len(preds) == 1
    assert preds[0].pred_sem_seg.shape == IMAGE  # original size
    # the merged prediction is the argmax of the views' mean probability
    probs = torch.stack([v.seg_logits.data.softmax(0) for v in views])
    assert all(v.seg_logits.shape == IMAGE for v in views)
    merged = probs.mean(0).argmax(0)
    assert torch.equal(preds[0].pred_sem_seg.data[0], merged)
    # the metric on that prediction equals an independent IoU computation
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, [p.to_dict() for p in preds])
    miou = metric.compute_metrics(metric.results)['mIoU']
    gt = sample['data_samples'][0].gt_sem_seg.data[0].numpy()
    assert _miou(merged.numpy(), gt, len(dataset.metainfo['classes']),
                 cfg.test_evaluator.get('ignore_index', 255)) == \
        pytest.approx(miou, abs=0.011)


def _miou(pred, gt, num_classes, ignore_index):
    """Mean IoU (%) over the classes present in prediction or ground truth,
    pixels labelled ``ignore_index`` left out: IoUMetric's definition."""
    keep = gt != ignore_index
    ious = []
    for c in range(num_classes):
        p, g = (pred == c) & keep, (gt == c) & keep
        union = (p | g).sum()
        if union:
            ious.append((p & g).sum() / union)
    return round(100 * float(np.mean(ious)), 2)


def test_tta_pipeline_follows_the_test_pipeline():
    """A child config that changes the test scale or img_ratios and sets
    ``tta_pipeline = None`` gets the matching TTA from tools/test.py; a
    pipeline without a scaled Resize is refused."""
    cfg = Config.fromfile('configs/demo/sctnet-s_demo_cityscapes.py')
    cfg.tta_pipeline = None
    cfg.test_dataloader.dataset.pipeline[1]['scale'] = (200, 100)
    cfg.img_ratios = [1.0, 2.0]
    scales, flips, *rest = _tta_transforms(tta_pipeline(cfg))
    assert [t['scale'] for t in scales] == [(200, 100), (400, 200)]
    assert [[t['type'] for t in stage] for stage in rest] == [
        ['LoadAnnotations'], ['PackSegInputs']]
    cfg.test_dataloader.dataset.pipeline.pop(1)
    with pytest.raises(ConfigError, match='no Resize with a scale'):
        tta_pipeline(cfg)
