"""Model helpers shared by the tests: official key list, random states,
config-built models and official-format checkpoints.

"""
import json
import os.path as osp
import sys

import numpy as np
import torch

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROOT = osp.dirname(TESTS)
PY = sys.executable

with open(osp.join(TESTS, 'data', 'official_state_dict_keys.json')) as f:
    REF = json.load(f)
CITY_CONFIG = {
    'S': 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py',
    'B': 'configs/sctnet/cityscapes/sctnet-b_seg50_8x2_160k_cityscapes.py',
}
SIZE_NAME = {'S': 'SCTNet-S', 'B': 'SCTNet-B'}


def reference_shapes(size):
    """Official key -> shape for 'S' or 'B' (student + SIAM projections)."""
    return {k: tuple(v) for k, v in REF['models'][SIZE_NAME[size]]}


def randomize_state(state, seed=0, tiny_var_fraction=0.25):
    """Random values that keep activations alive through the whole network.

    He-scaled conv/linear weights, BN affine near (1, 0), BN running
    statistics near (0, 1), small biases. Integer buffers are kept.

    In every BatchNorm, ``tiny_var_fraction`` of the channels get a tiny
    running variance (1e-6 to 1e-5, log-uniform) and a scale of about
    ``sqrt(running_var)``, as trained networks have: those channels stay of
    order one, but their output depends on the BN's ``eps`` (1e-6 vs 1e-5
    changes it by a factor 1.3 to 2.6), so a parity test sees a wrong eps.
    With ``tiny_var_fraction=0`` the values are those of the plain scheme.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(shape):
        return torch.randn(shape, generator=g)

    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v.clone()
            continue
        base = k.rsplit('.', 1)[0]
        partner = state.get(base + '.weight')
        is_norm = partner is not None and partner.dim() == 1
        if k.endswith('running_var'):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith('running_mean'):
            out[k] = rand(v.shape) * 0.1
        elif v.dim() >= 2:
            out[k] = rand(v.shape) * (2.0 / v[0].numel())**0.5
        elif is_norm and k.endswith('.weight'):
            out[k] = 1.0 + rand(v.shape) * 0.1
        else:  # biases
            out[k] = rand(v.shape) * 0.05
    # a separate stream, so the values above do not depend on the fraction
    g_tiny = torch.Generator().manual_seed(seed + 7919)
    for k in out:
        base = k[:-len('.running_var')]
        if not k.endswith('.running_var') or base + '.weight' not in out:
            continue
        var, weight = out[k], out[base + '.weight']
        tiny = torch.rand(var.shape, generator=g_tiny) < tiny_var_fraction
        tiny_var = 10**(-6 + torch.rand(var.shape, generator=g_tiny))
        var[tiny] = tiny_var[tiny].to(var.dtype)
        weight[tiny] = var[tiny].sqrt() * (
            1 + 0.1 * torch.randn(var.shape, generator=g_tiny)[tiny])
    return out


def build_cfg_model(config, train=True, **overrides):
    """Build the segmentor of ``config`` (teacher built when ``train``).

    No pretrained backbone and no teacher file unless ``overrides`` set one
    (e.g. ``{'model.siam_head.teacher_checkpoint': path}``).
    """
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    if 'siam_head' in cfg.model:
        cfg.model.siam_head.teacher_checkpoint = None
    if not train:
        cfg.model.train_cfg = None
    cfg.merge_from_dict(overrides)
    return MODELS.build(cfg.model)


def write_official_checkpoint(path, size, seed=0, with_teacher=True):
    """A checkpoint as the official release writes it (mmcv-0.x trainer).

    ``state_dict`` holds every key of the reference JSON (student, auxiliary
    head, SIAM projections) plus, with ``with_teacher``, the teacher under
    ``auxiliary_head.1.teacher_*``; ``meta`` has mmcv-0.x fields with numpy
    values; ``optimizer`` an AdamW state.
    """
    shapes = reference_shapes(size)
    state = {}
    for k, shp in shapes.items():
        if k.endswith('num_batches_tracked'):
            state[k] = torch.tensor(1000)
        else:
            state[k] = torch.zeros(shp)
    if with_teacher:
        model = build_cfg_model(CITY_CONFIG[size])
        for k, v in model.state_dict().items():
            if '.teacher_' in k:
                state[k] = v.clone()
    state = randomize_state(state, seed)
    from mmseg.datasets import CityscapesDataset
    meta = dict(
        mmcv_version='1.6.0',
        mmseg_version='0.26.0',
        time='Mon Oct 10 10:10:10 2022',
        CLASSES=CityscapesDataset.METAINFO['classes'],
        PALETTE=[list(p) for p in CityscapesDataset.METAINFO['palette']],
        config='model = dict(type="EncoderDecoder_Distill")',
        seed=1355374048,
        epoch=1,
        iter=160000,
        hook_msgs=dict(
            last_ckpt='work_dirs/x/iter_160000.pth',
            best_score=np.float64(76.46),
            best_ckpt='work_dirs/x/best_mIoU_iter_158000.pth'))
    optimizer = dict(
        state={0: dict(step=torch.tensor(10.), exp_avg=torch.zeros(3))},
        param_groups=[dict(lr=1e-6, betas=(0.9, 0.999), params=[0])])
    torch.save(dict(meta=meta, state_dict=state, optimizer=optimizer), path)
    return state
