"""Every official leaf config: the official values, the network, the loss.

The expected numbers below are written from the official configs' settings
(SCTNET.md section 3, github.com/xzz777/SCTNet configs/sctnet/**), not read
from this repository's configs: a changed value in a base, a schedule or a
leaf (a crop size, a test scale, a learning rate, the CWD temperature, a
loss weight) fails here.
"""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from helpers.models import ROOT, build_cfg_model

# Collected before any fixture runs: relative to the root, not the cwd.
# The official leaves; a *-trainval.py leaf is one of them trained on train
# + val (for a test server), checked in tests/test_cityscapes_server.py.
LEAVES = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs/sctnet/*/*.py'))
    if not p.endswith('-trainval.py'))
EXPECTED = {
    'sctnet-s_seg50_8x2_160k_cityscapes.py': (19, 32, 6, 'city', (1024, 512)),
    'sctnet-s_seg75_8x2_160k_cityscapes.py': (19, 32, 6, 'city', (1536, 768)),
    'sctnet-b_seg50_8x2_160k_cityscapes.py': (19, 64, 18, 'city', (1024, 512)),
    'sctnet-b_seg75_8x2_160k_cityscapes.py': (19, 64, 18, 'city', (1536, 768)),
    'sctnet-b_seg100_8x2_160k_cityscapes.py':
    (19, 64, 18, 'city', (2048, 1024)),
    'sctnet-s_8x4_160k_ade.py': (150, 32, 6, 'ADE', (2048, 512)),
    'sctnet-b_8x4_160k_ade.py': (150, 64, 18, 'ADE', (2048, 512)),
    'sctnet_b_4x4_160k.py': (171, 64, 18, 'COCO', (2560, 640)),
}
# data: crop (h, w), random-rescale base (w, h) and ratio range, images/GPU
CITY50 = dict(
    crop=(512, 1024), scale=(2048, 1024), ratio=(0.25, 1.5), batch=8)
DATA = {
    'sctnet-s_seg50_8x2_160k_cityscapes.py': CITY50,
    'sctnet-s_seg75_8x2_160k_cityscapes.py': CITY50,
    'sctnet-b_seg50_8x2_160k_cityscapes.py': CITY50,
    'sctnet-b_seg75_8x2_160k_cityscapes.py': CITY50,
    'sctnet-b_seg100_8x2_160k_cityscapes.py':
    dict(crop=(1024, 1024), scale=(2048, 1024), ratio=(0.5, 2.0), batch=8),
    'sctnet-s_8x4_160k_ade.py':
    dict(crop=(512, 512), scale=(2048, 512), ratio=(0.5, 2.0), batch=8),
    'sctnet-b_8x4_160k_ade.py':
    dict(crop=(512, 512), scale=(2048, 512), ratio=(0.5, 2.0), batch=8),
    'sctnet_b_4x4_160k.py':
    dict(crop=(640, 640), scale=(2560, 640), ratio=(0.5, 2.0), batch=4),
}
# schedule per dataset: lr, weight decay, weight decay on norm layers
# (official custom_keys 'norm' -> decay_mult 0), min lr, checkpoint and
# evaluation intervals
SCHEDULE = {
    'city':
    dict(lr=4e-4, wd=0.0125, norm_wd=0.0125, min_lr=1e-6, ckpt=2000,
         val=2000),
    'ADE':
    dict(lr=5e-4, wd=0.01, norm_wd=0.0, min_lr=0.0, ckpt=4000, val=8000),
    'COCO':
    dict(lr=6e-5, wd=0.01, norm_wd=0.0, min_lr=0.0, ckpt=4000, val=4000),
}
# SIAM: CWD temperature and the weights of [logits, decoder feature,
# stage 4, stage 3]; cross-entropy weights of the decode and auxiliary head
TAU = 4.0
SIAM_WEIGHTS = {
    'siam.loss_sdha_logits': 3.0,
    'siam.loss_sdha_feat': 15.0,
    'siam.loss_bfa_stage4': 15.0,
    'siam.loss_bfa_stage3': 15.0,
}
CE_DECODE, CE_AUX = 1.0, 0.4


def _name(path):
    return path.rsplit('/', 1)[1]


def test_all_official_config_names_exist():
    names = sorted(_name(p) for p in LEAVES)
    assert names == sorted(EXPECTED) == sorted(DATA)


@pytest.mark.parametrize('config', LEAVES, ids=_name)
def test_official_training_settings(config):
    """Data pipeline, padding, batch, schedule and hooks of the official
    config (resolved through every base)."""
    name = _name(config)
    data = DATA[name]
    sched = SCHEDULE[EXPECTED[name][3]]
    test_scale = EXPECTED[name][4]
    cfg = Config.fromfile(config)
    train = cfg.train_dataloader
    types = [t['type'] for t in train.dataset.pipeline]
    assert types == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomResize',
        'RandomCrop', 'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs'
    ]
    _, _, resize, crop, flip = train.dataset.pipeline[:5]
    assert tuple(resize['scale']) == data['scale']
    assert tuple(resize['ratio_range']) == data['ratio']
    assert resize['keep_ratio']
    assert tuple(crop['crop_size']) == data['crop']
    assert crop['cat_max_ratio'] == 0.75
    assert flip['prob'] == 0.5
    assert train.batch_size == data['batch'] and train.num_workers == 4
    # Normalize, then Pad to the crop (image 0, label 255)
    pre = cfg.model.data_preprocessor
    assert tuple(pre['size']) == data['crop']
    assert pre['pad_val'] == 0 and pre['seg_pad_val'] == 255
    assert pre['mean'] == [123.675, 116.28, 103.53]
    assert pre['std'] == [58.395, 57.12, 57.375] and pre['bgr_to_rgb']
    # whole-image test at the official scale, one image per batch
    for dl in (cfg.val_dataloader, cfg.test_dataloader):
        resize = [t for t in dl.dataset.pipeline if t['type'] == 'Resize']
        assert [(tuple(t['scale']), t['keep_ratio'])
                for t in resize] == [(test_scale, True)]
        assert dl.batch_size == 1
    assert cfg.model.test_cfg == dict(mode='whole')
    assert cfg.model.backbone.norm_cfg['type'] == 'SyncBN'
    # optimiser and schedule
    opt = cfg.optim_wrapper.optimizer
    assert (opt['type'], opt['lr'], tuple(opt['betas']),
            opt['weight_decay']) == ('AdamW', sched['lr'], (0.9, 0.999),
                                     sched['wd'])
    warm, poly = cfg.param_scheduler
    assert (warm['type'], warm['start_factor'], warm['begin'],
            warm['end']) == ('LinearLR', 1e-6, 0, 1500)
    assert (poly['type'], poly['power'], poly['eta_min'], poly['begin'],
            poly['end']) == ('PolyLR', 1.0, sched['min_lr'], 0, 160000)
    assert not warm['by_epoch'] and not poly['by_epoch']
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_cfg.val_interval == sched['val']
    assert cfg.default_hooks.checkpoint['interval'] == sched['ckpt']
    assert not cfg.default_hooks.checkpoint['by_epoch']


def _cwd(s, t, tau):
    """Channel-wise distillation, written out: per channel, softmax over
    the positions of map / tau; KL(teacher || student) * tau^2 / (N*C)."""
    n, c = s.shape[:2]
    log_s = torch.log_softmax(s.reshape(n, c, -1).double() / tau, -1)
    log_t = torch.log_softmax(t.reshape(n, c, -1).double() / tau, -1)
    return (log_t.exp() * (log_t - log_s)).sum() * tau**2 / (n * c)


@pytest.mark.parametrize('config', LEAVES, ids=_name)
def test_leaf_config_builds_and_runs(config):
    classes, c, depth3, teacher_tag, test_scale = EXPECTED[_name(config)]
    sched = SCHEDULE[teacher_tag]
    cfg = Config.fromfile(config)
    assert cfg.custom_imports['imports'] == ['mmseg_sctnet']
    assert teacher_tag in cfg.model.siam_head.teacher_checkpoint
    assert cfg.test_pipeline[1]['scale'] == test_scale
    model = build_cfg_model(config)
    assert model.decode_head.num_classes == classes
    assert model.backbone.base_channels == c
    aux, guidance = model.auxiliary_head
    assert aux.num_classes == classes
    assert guidance.teacher_head.num_classes == classes
    assert len(guidance.teacher_backbone.layers[2][1]) == depth3  # MiT-B2/B3
    model.init_weights()  # random teacher: no file needed for this test
    h, w = 64, 96
    img = torch.randn(2, 3, h, w)
    gt = torch.randint(0, classes, (2, h, w))
    samples = []
    for i in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=gt[i:i + 1])
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    model.train()
    losses = model.loss(img, samples)
    for name in ('decode.loss_ce', 'aux_0.loss_ce', *SIAM_WEIGHTS):
        assert torch.isfinite(losses[name]), name

    # The loss settings, recomputed from the heads' outputs (eval mode: no
    # drop path, so the same features): CE x 1.0 and x 0.4, and each SIAM
    # term = its weight x CWD(student, teacher) at tau 4.
    model.eval()
    with torch.no_grad():
        losses = model.loss(img, samples)
        x = model.extract_feat(img)

        def ce(logits):
            logits = F.interpolate(
                logits, (h, w), mode='bilinear', align_corners=False)
            return F.cross_entropy(logits, gt, ignore_index=255)

        assert losses['decode.loss_ce'].item() == pytest.approx(
            CE_DECODE * ce(model.decode_head(x)).item(), rel=1e-4)
        assert losses['aux_0.loss_ce'].item() == pytest.approx(
            CE_AUX * ce(aux(x)).item(), rel=1e-4)
        feats_s, feats_t = guidance(x, img)
        for key, s, t in zip(SIAM_WEIGHTS, feats_s, feats_t):
            assert s.shape == t.shape, key
            assert losses[key].item() == pytest.approx(
                SIAM_WEIGHTS[key] * _cwd(s, t, TAU).item(), rel=1e-4), key
        out = model(img, mode='tensor')
    assert out.shape == (2, classes, h // 8, w // 8)

    # The optimiser the config builds: AdamW, heads lr x10, weight decay
    # (none on parameters named *norm* where official), no teacher.
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    group = {}
    for g in wrapper.optimizer.param_groups:
        for p in g['params']:
            group[id(p)] = g
    params = dict(model.named_parameters())
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)

    def lr_wd(name):
        g = group[id(params[name])]
        return g['lr'], g['weight_decay']

    lr, wd = sched['lr'], sched['wd']
    assert lr_wd('backbone.conv1.0.weight') == (lr, wd)
    assert lr_wd('decode_head.conv1.weight') == pytest.approx((10 * lr, wd))
    assert lr_wd('auxiliary_head.1.convstage3.weight') == pytest.approx(
        (10 * lr, wd))
    assert lr_wd('backbone.layer4.attn_l.norm.weight') == (lr,
                                                          sched['norm_wd'])
    teacher = [n for n in params if '.teacher_' in n]
    assert teacher and not [n for n in teacher if id(params[n]) in group]


@pytest.mark.parametrize(
    'config,base,min_lr',
    [('configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py',
      4e-4, 1e-6),
     ('configs/sctnet/COCO-Stuff-10K/sctnet_b_4x4_160k.py', 6e-5, 0.0)],
    ids=['cityscapes', 'coco-stuff'])
def test_schedule_matches_official_poly_with_warmup(config, base, min_lr):
    """LR at a few iterations equals mmcv-0.x poly + linear warm-up."""
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(config)
    model = torch.nn.Conv2d(1, 1, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    scheds = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
        for s in cfg.param_scheduler
    ]
    total, warm = 160000, 1500
    seen = {}
    checks = (0, 1, 10, 750, 1499, 1500, 3000, 80000, 159000, 159998)
    for it in range(159999):
        if it in checks:
            seen[it] = wrapper.optimizer.param_groups[0]['lr']
        for s in scheds:
            s.step()

    def official(i):  # mmcv 0.x PolyLrUpdaterHook + linear warmup
        regular = (base - min_lr) * (1 - i / total)**1.0 + min_lr
        if i < warm:
            return regular * (1 - (1 - i / warm) * (1 - 1e-6))
        return regular

    # MMEngine's PolyLR runs one iteration ahead of mmcv-0.x's: a difference
    # of at most one iteration's decay, base / total (it only shows as a
    # relative error in the last iterations when the minimum lr is 0)
    for it in checks:
        assert abs(seen[it] - official(it)) <= (3e-3 * official(it) +
                                                base / total), it
