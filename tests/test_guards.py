"""Guards the suite lacked: each test here fails when the behaviour it
names breaks (checked by mutating the code): the optimizer leaving the
teacher out, exact resume restoring every random generator, a
DataParallel checkpoint loading every tensor, the conv-BN fold with a
conv bias."""
import glob
import os.path as osp
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers.models import CITY_CONFIG, ROOT, build_cfg_model, randomize_state
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmseg_sctnet.deploy import load_inference_model
from mmseg_sctnet.engine import ExactResumeHook
from mmseg_sctnet.io.checkpoint import read_checkpoint
from mmseg_sctnet.models.layers import fuse_conv_bn

#: training configs whose model trains with SIAM (a teacher inside)
SIAM_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '*', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p and 'pretrain' not in p
    and 'segformer' not in osp.basename(p)
    and 'custom_dataset' not in osp.basename(p))


def _optimized(wrapper):
    return {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}


def test_optimizer_leaves_out_a_teacher_that_requires_grad():
    """The teacher is frozen twice (``requires_grad=False`` and the
    constructor); with its parameters made trainable, the constructor alone
    must still keep every teacher tensor out of the optimizer and every
    student tensor in."""
    cfg = Config.fromfile(osp.join(ROOT, CITY_CONFIG['S']))
    model = build_cfg_model(CITY_CONFIG['S'])
    head = model.auxiliary_head[1]
    teacher = list(head.teacher_backbone.parameters()) + list(
        head.teacher_head.parameters())
    for p in teacher:
        p.requires_grad_(True)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    ids = _optimized(wrapper)
    assert not ids & {id(p) for p in teacher}
    student = [p for n, p in model.named_parameters()
               if 'teacher_' not in n]
    assert {id(p) for p in student} <= ids
    assert len(ids) == len(student)


@pytest.mark.parametrize('config', SIAM_CONFIGS,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_siam_configs_name_the_constructor(config):
    cfg = Config.fromfile(config)
    if not cfg.model.get('siam_head') and cfg.model.get(
            'type') != 'EncoderDecoderDistill':
        pytest.skip('no SIAM head')
    assert cfg.optim_wrapper.get(
        'constructor') == 'SCTNetOptimWrapperConstructor'


def _draws():
    return (random.random(), tuple(np.random.rand(3)),
            tuple(torch.rand(3).tolist()))


def test_resume_state_restores_python_numpy_and_torch(tmp_path):
    """``ExactResumeHook.capture``/``restore``: after a round trip through a
    checkpoint file (read as every checkpoint is, weights only), the next
    draws of ``random``, NumPy and torch are those that followed the
    capture."""
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = ExactResumeHook.capture()
    expected = _draws()
    for _ in range(5):  # move every generator on
        _draws()
    path = str(tmp_path / 'rng.pth')
    torch.save(dict(rng_state=state), path)
    ExactResumeHook.restore(read_checkpoint(path)['rng_state'])
    got = _draws()
    assert got[0] == expected[0], 'random'
    assert got[1] == expected[1], 'numpy'
    assert got[2] == expected[2], 'torch'


def test_dataparallel_checkpoint_loads_every_tensor(tmp_path):
    """A checkpoint saved from a (Distributed)DataParallel wrapper carries
    ``module.`` in every key; the inference loader and MMSegmentation's
    ``init_model`` put every tensor in place."""
    from mmseg.apis import init_model
    model = build_cfg_model(CITY_CONFIG['S'], train=False)
    state = randomize_state(model.state_dict(), seed=5)
    wrapped = {'module.' + k: v for k, v in state.items()}
    path = str(tmp_path / 'dp.pth')
    torch.save(dict(state_dict=wrapped, meta={}), path)
    for loaded in (load_inference_model(CITY_CONFIG['S'], path),
                   init_model(CITY_CONFIG['S'], path, device='cpu')):
        got = loaded.state_dict()
        for k, v in state.items():
            if k.endswith('num_batches_tracked'):
                continue
            assert torch.equal(got[k], v), k


def test_post_norm_fold_of_a_conv_with_bias():
    g = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(5, 7, 3, stride=2, padding=1, bias=True)
    with torch.no_grad():
        conv.bias.copy_(torch.randn(7, generator=g) * 2)
    bn = nn.BatchNorm2d(7).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(7, generator=g))
        bn.running_var.copy_(torch.rand(7, generator=g) + 0.1)
        bn.weight.copy_(torch.randn(7, generator=g))
        bn.bias.copy_(torch.randn(7, generator=g))
    x = torch.randn(2, 5, 9, 11, generator=g)
    ref = bn(conv(x)).double()
    out = fuse_conv_bn(conv, bn)(x).double()
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-5
