"""An official config's model section builds and trains here.

``data/official_model_sections.json`` holds the ``model = dict(...)`` of the
eight official configs (github.com/xzz777/SCTNet, configs/sctnet/**), values
copied as data. Their ``VitGuidanceHead`` has no teacher architecture (the
official head builds MiT-B2 for base_channels 32, MiT-B3 otherwise) and the
teacher file in ``init_cfg``. Each must build the same network, tensor for
tensor, as this repository's config of the same name, and train.
"""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from helpers.models import ROOT, TESTS, build_cfg_model

from mmseg_sctnet.io.errors import ConfigError

OFFICIAL = json.load(
    open(osp.join(TESTS, 'data', 'official_model_sections.json')))['models']
# the official teacher of each student width (SCTNET.md section 2)
MIT = {32: ('MiT-B2', [3, 4, 6, 3]), 64: ('MiT-B3', [3, 4, 18, 3])}


def _leaf(name):
    sub = {'ade': 'ADE20K', 'cityscapes': 'cityscapes'}
    folder = next((v for k, v in sub.items() if k in name), 'COCO-Stuff-10K')
    return osp.join(ROOT, 'configs', 'sctnet', folder, name)


def _official(name, teacher_file=None):
    model = copy.deepcopy(OFFICIAL[name])
    model['backbone']['init_cfg'] = None  # no SCT-*_Pretrain.pth here
    if teacher_file is not None:
        model['auxiliary_head'][1]['init_cfg']['checkpoint'] = teacher_file
    return MODELS.build(model)


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _batch(classes, n=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, h, w, generator=g)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, classes, (1, h, w), generator=g))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    return img, samples


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_official_model_section_builds_the_same_network(name):
    section = OFFICIAL[name]
    c = section['backbone']['base_channels']
    classes = section['decode_head']['num_classes']
    model = _official(name)
    guidance = model.auxiliary_head[1]
    # the teacher the official head builds for this student width
    mit, depths = MIT[c]
    assert [len(guidance.teacher_backbone.layers[i][1])
            for i in range(4)] == depths, mit
    assert guidance.teacher_head.num_classes == classes
    assert guidance.teacher_head.channels == 256
    assert guidance.teacher_checkpoint == \
        section['auxiliary_head'][1]['init_cfg']['checkpoint']
    assert guidance.in_index == (0, 2, 3)
    # tensor for tensor the network of this repository's config
    ours = build_cfg_model(_leaf(name))
    assert _shapes(model) == _shapes(ours)
    # the official AlignmentLoss has tau 4 built in; ours defaults to it
    assert guidance.loss_decode.tau == 4.0
    assert guidance.loss_decode.loss_weight == [3.0, 15.0, 15.0, 15.0]
    # and it trains: every loss term finite, gradients reach the student
    model.train()
    losses = model.loss(*_batch(classes))
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.conv1[0].weight.grad.abs().sum() > 0
    assert guidance.convstage3.weight.grad.abs().sum() > 0


def _segformer_checkpoint(path, embed, depths, classes, seed=0):
    """A SegFormer saved by MMSegmentation (``backbone.*``,
    ``decode_head.*``), the form a teacher is trained in."""
    torch.manual_seed(seed)
    seg = MODELS.build(
        dict(
            type='EncoderDecoder',
            backbone=dict(
                type='MixVisionTransformer',
                embed_dims=embed,
                num_layers=depths,
                num_heads=[1, 2, 5, 8]),
            decode_head=dict(
                type='SegformerHead',
                in_channels=[embed * h for h in (1, 2, 5, 8)],
                in_index=[0, 1, 2, 3],
                channels=256,
                num_classes=classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                loss_decode=dict(type='CrossEntropyLoss'))))
    state = seg.state_dict()
    torch.save(dict(meta=dict(iter=1), state_dict=state), path)
    return state


def test_official_model_section_loads_its_teacher_and_trains_a_step(
        tmp_path):
    """sctnet-s_seg50 as released: its MiT-B2 teacher file (official name)
    loads into the inferred teacher, one optimiser step with the config's
    optimiser changes the student and leaves the teacher as loaded."""
    name = 'sctnet-s_seg50_8x2_160k_cityscapes.py'
    teacher = str(tmp_path / 'Teacher_SegFormer_B2_city.pth')
    state = _segformer_checkpoint(teacher, 64, [3, 4, 6, 3], 19)
    model = _official(name, teacher)
    model.init_weights()
    guidance = model.auxiliary_head[1]
    loaded = guidance.state_dict()
    for k, v in state.items():
        key = k.replace('backbone.', 'teacher_backbone.', 1).replace(
            'decode_head.', 'teacher_head.', 1)
        if key.startswith('teacher_'):
            assert torch.equal(loaded[key], v), key
    cfg = Config.fromfile(_leaf(name))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    losses = model.loss(*_batch(19))
    assert set(losses) >= {
        'decode.loss_ce', 'aux_0.loss_ce', 'siam.loss_sdha_logits',
        'siam.loss_sdha_feat', 'siam.loss_bfa_stage4', 'siam.loss_bfa_stage3'
    }
    total = sum(v for k, v in losses.items() if 'loss' in k)
    wrapper.update_params(total)
    after = model.state_dict()
    assert not torch.equal(before['backbone.conv1.0.weight'],
                           after['backbone.conv1.0.weight'])
    teacher_keys = [k for k in after if '.teacher_' in k]
    assert teacher_keys
    for k in teacher_keys:
        assert torch.equal(before[k], after[k]), k


def test_teacher_size_from_the_file_name_and_clear_error_otherwise():
    head = copy.deepcopy(
        OFFICIAL['sctnet-s_seg50_8x2_160k_cityscapes.py']['auxiliary_head']
        [1])
    # a file name that names the MiT size wins over the official pairing
    head['init_cfg']['checkpoint'] = 'pretrained/segformer_mit-b0_custom.pth'
    b0 = MODELS.build(copy.deepcopy(head))
    assert b0.teacher_backbone.embed_dims == 32
    assert b0.teacher_widths == dict(stage3=160, stage4=256, decoder=1024)
    # neither the file name nor base_channels tells the size: one clear
    # error naming both and the fix
    head['init_cfg']['checkpoint'] = 'pretrained/my_teacher.pth'
    head['base_channels'] = 48
    with pytest.raises(ConfigError) as e:
        MODELS.build(head)
    msg = str(e.value)
    for part in ("'my_teacher.pth'", 'base_channels=48', 'teacher_backbone',
                 'configs/_base_/models/sctnet-b.py'):
        assert part in msg, msg
