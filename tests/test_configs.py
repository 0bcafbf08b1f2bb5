"""Every leaf config builds, runs a forward and a SIAM training loss."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from model_helpers import ROOT, build_cfg_model

# Collected before any fixture runs: relative to the root, not the cwd.
LEAVES = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs/sctnet/*/*.py')))
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


def test_all_official_config_names_exist():
    names = sorted(p.rsplit('/', 1)[1] for p in LEAVES)
    assert names == sorted(EXPECTED)


@pytest.mark.parametrize('config', LEAVES, ids=lambda p: p.rsplit('/', 1)[1])
def test_leaf_config_builds_and_runs(config):
    classes, c, depth3, teacher_tag, test_scale = EXPECTED[config.rsplit(
        '/', 1)[1]]
    cfg = Config.fromfile(config)
    assert cfg.custom_imports['imports'] == ['mmseg_sctnet']
    assert teacher_tag in cfg.model.siam_head.teacher_checkpoint
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.test_pipeline[1]['scale'] == test_scale
    model = build_cfg_model(config)
    assert model.decode_head.num_classes == classes
    assert model.backbone.base_channels == c
    aux, guidance = model.auxiliary_head
    assert aux.num_classes == classes
    assert guidance.teacher_head.num_classes == classes
    assert len(guidance.teacher_backbone.layers[2][1]) == depth3  # MiT-B2/B3
    model.init_weights()  # random teacher: no file needed for this test
    model.train()
    h, w = 64, 96
    img = torch.randn(2, 3, h, w)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, h, w)))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    losses = model.loss(img, samples)
    for name in ('decode.loss_ce', 'aux_0.loss_ce', 'siam.loss_sdha_logits',
                 'siam.loss_sdha_feat', 'siam.loss_bfa_stage4',
                 'siam.loss_bfa_stage3'):
        assert torch.isfinite(losses[name]), name
    model.eval()
    with torch.no_grad():
        out = model(img, mode='tensor')
    assert out.shape == (2, classes, h // 8, w // 8)


def test_schedule_matches_official_poly_with_warmup():
    """LR at a few iterations equals mmcv-0.x poly + linear warm-up."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(
        'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')
    model = torch.nn.Conv2d(1, 1, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    scheds = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
        for s in cfg.param_scheduler
    ]
    base, min_lr, total, warm = 4e-4, 1e-6, 160000, 1500
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

    for it in checks:
        assert abs(seen[it] - official(it)) <= 3e-3 * official(it), it
