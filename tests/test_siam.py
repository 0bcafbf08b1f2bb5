"""SIAM: teacher parity with mmseg's SegFormer, freezing, BFA/SDHA, CWD."""
import copy
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from helpers.models import CITY_CONFIG, build_cfg_model, randomize_state

from mmseg_sctnet.models.decode_heads.vit_guidance_head import \
    match_channel_statistics
from mmseg_sctnet.models.losses import channel_wise_divergence

MMSEG_CFG = osp.join(
    osp.dirname(mmseg.__file__), '.mim', 'configs', 'segformer',
    'segformer_mit-{}_8xb1-160k_cityscapes-1024x1024.py')


def _mmseg_segformer(arch, seed):
    """mmseg's own SegFormer (EncoderDecoder) with random, lively weights."""
    cfg = Config.fromfile(MMSEG_CFG.format(arch))
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    model = MODELS.build(cfg.model)
    model.load_state_dict(randomize_state(model.state_dict(), seed))
    return model.eval()


def _samples(n, h, w, classes=19, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, classes, (1, h, w), generator=g))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        out.append(s)
    return out


@pytest.fixture(scope='module')
def segformer_b2_ckpt(tmp_path_factory):
    """An unconverted mmseg-1.x SegFormer-B2 checkpoint (with an auxiliary
    head tensor that conversion must drop)."""
    model = _mmseg_segformer('b2', seed=11)
    state = dict(model.state_dict())
    state['auxiliary_head.conv_seg.weight'] = torch.zeros(19, 8, 1, 1)
    path = str(tmp_path_factory.mktemp('teacher') / 'segformer_b2.pth')
    torch.save(
        dict(
            meta=dict(mmengine_version='0.10.7', iter=160000),
            state_dict=state,
            message_hub=dict(log_scalars={}),
            optimizer=dict(state={}, param_groups=[])), path)
    return path, model


@pytest.mark.parametrize('converted', [False, True])
def test_teacher_logits_equal_mmseg_segformer(segformer_b2_ckpt, converted,
                                              tmp_path):
    path, segformer = segformer_b2_ckpt
    if converted:
        out = str(tmp_path / 'teacher.pth')
        res = subprocess.run(
            [sys.executable, 'tools/pth_convert.py', path, out],
            capture_output=True,
            text=True)
        assert res.returncode == 0, res.stderr
        assert 'dropped auxiliary_head.*  1 tensors' in res.stdout
        path = out
    model = build_cfg_model(
        CITY_CONFIG['S'], **{'model.siam_head.teacher_checkpoint': path})
    model.init_weights()
    head = model.auxiliary_head[1]
    img = torch.randn(2, 3, 96, 200)
    with torch.no_grad():
        ref = segformer._forward(img)  # logits at 1/4
    ours = head.teacher_forward(img)['logits']
    assert ours.shape == ref.shape == (2, 19, 24, 50)
    assert ref.std() > 0.05 * ref.abs().max()
    assert ((ours - ref).abs().max() / ref.abs().max()).item() < 1e-4


def test_mismatched_teacher_is_refused_with_a_clear_message(segformer_b2_ckpt):
    path, _ = segformer_b2_ckpt
    model = build_cfg_model(
        CITY_CONFIG['B'], **{'model.siam_head.teacher_checkpoint': path})
    with pytest.raises(ValueError) as err:
        model.init_weights()  # a MiT-B2 file for the MiT-B3 teacher
    msg = str(err.value)
    assert path in msg and 'missing tensors' in msg
    assert 'pth_convert.py' in msg


def test_missing_teacher_file_names_it_and_the_fix(tmp_path):
    missing = str(tmp_path / 'Teacher_SegFormer_B2_city.pth')
    model = build_cfg_model(
        CITY_CONFIG['S'], **{'model.siam_head.teacher_checkpoint': missing})
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    assert missing in str(err.value)
    assert 'tools/pth_convert.py' in str(err.value)
    assert 'use_siam=False' in str(err.value)


def test_training_steps_keep_teacher_bit_identical(segformer_b2_ckpt):
    path, _ = segformer_b2_ckpt
    cfg = Config.fromfile(CITY_CONFIG['S'])
    model = build_cfg_model(
        CITY_CONFIG['S'], **{'model.siam_head.teacher_checkpoint': path})
    model.init_weights()
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    head = model.auxiliary_head[1]
    teacher = {
        k: v.clone()
        for k, v in model.state_dict().items() if '.teacher_' in k
    }
    assert any('running_var' in k for k in teacher)  # BN buffers included
    student = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.startswith(('backbone.', 'decode_head.', 'auxiliary_head.0.'))
    }
    # the teacher is absent from every parameter group
    grouped = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    for m in (head.teacher_backbone, head.teacher_head):
        assert not any(id(p) in grouped for p in m.parameters())
    assert all(not p.requires_grad for p in head.teacher_backbone.parameters())
    n_student = sum(1 for n, p in model.named_parameters()
                    if '.teacher_' not in n)
    assert len(grouped) == n_student
    torch.manual_seed(0)
    for step in range(2):
        data = dict(
            inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                    for _ in range(2)],
            data_samples=_samples(2, 64, 64, seed=step))
        log_vars = model.train_step(data, wrapper)
        for name in ('decode.loss_ce', 'aux_0.loss_ce', 'siam.loss_sdha_logits',
                     'siam.loss_sdha_feat', 'siam.loss_bfa_stage4',
                     'siam.loss_bfa_stage3'):
            assert torch.isfinite(torch.as_tensor(log_vars[name])), name
        assert not head.teacher_backbone.training
        assert not head.teacher_head.training
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in teacher.items())
    changed = [k for k, v in student.items() if not torch.equal(after[k], v)]
    assert len(changed) > 0.5 * len(student)


def test_sdha_gradients_flow_through_frozen_teacher_head():
    model = build_cfg_model(CITY_CONFIG['S'])
    model.init_weights()
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 96), _samples(2, 64, 96))
    losses['siam.loss_sdha_logits'].backward()
    head = model.auxiliary_head[1]
    assert head.feature_transforms.weight.grad.abs().sum() > 0
    assert model.backbone.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in head.teacher_head.parameters())
    # BFA terms only reach their own projections
    assert head.convstage3.weight.grad is None


def test_siam_can_be_switched_off():
    model = build_cfg_model(CITY_CONFIG['S'], **{'model.use_siam': False})
    assert len(model.auxiliary_head) == 1
    assert not any('teacher' in k for k in model.state_dict())
    losses = model.loss(torch.randn(2, 3, 64, 96), _samples(2, 64, 96))
    assert not any(k.startswith('siam.') for k in losses)


def test_inference_model_needs_no_teacher_file(tmp_path):
    """init_model + a student-only checkpoint; the teacher file is absent."""
    from mmseg.apis import init_model
    train_model = build_cfg_model(CITY_CONFIG['B'])
    student = {
        k: v
        for k, v in randomize_state(train_model.state_dict(), 5).items()
        if '.teacher_' not in k and not k.startswith('auxiliary_head.1')
    }
    ckpt = str(tmp_path / 'student_only.pth')
    torch.save(dict(state_dict=student, meta=dict()), ckpt)
    cfg = Config.fromfile(CITY_CONFIG['B'])
    assert not osp.exists(cfg.model.siam_head.teacher_checkpoint)
    model = init_model(CITY_CONFIG['B'], ckpt, device='cpu')
    assert model.guidance_heads == []
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, 19, 8, 8)


def _cwd_reference(s, t, tau):
    """Independent CWD: float64, loops over samples and channels."""
    s, t = s.double(), t.double()
    total = 0.0
    n, c = s.shape[:2]
    for i in range(n):
        for j in range(c):
            p_t = torch.softmax(t[i, j].flatten() / tau, 0)
            log_p_s = torch.log_softmax(s[i, j].flatten() / tau, 0)
            total += F.kl_div(log_p_s, p_t, reduction='sum').item()
    return total * tau**2 / (n * c)


def test_cwd_matches_independent_computation():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 5, 7, 9, generator=g) * 3
    t = torch.randn(2, 5, 7, 9, generator=g) * 3
    for tau in (1.0, 4.0):
        assert channel_wise_divergence(s, t, tau).item() == pytest.approx(
            _cwd_reference(s, t, tau), rel=1e-5)


def test_cwd_is_zero_for_identical_maps_and_positive_otherwise():
    x = torch.randn(2, 3, 8, 8)
    assert channel_wise_divergence(x, x.clone()).item() == pytest.approx(
        0.0, abs=1e-6)
    assert channel_wise_divergence(x, x.flip(-1)).item() > 1e-3


def test_cwd_resizes_the_smaller_student_map():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(1, 4, 5, 6, generator=g)
    t = torch.randn(1, 4, 10, 12, generator=g)
    up = F.interpolate(s, (10, 12), mode='bilinear', align_corners=False)
    assert channel_wise_divergence(s, t).item() == pytest.approx(
        _cwd_reference(up, t, 4.0), rel=1e-5)
    with pytest.raises(ValueError, match='same N and C'):
        channel_wise_divergence(torch.randn(1, 3, 4, 4), t)


def test_alignment_loss_reports_each_term_with_its_weight():
    from mmseg_sctnet.models.losses import AlignmentLoss
    loss = AlignmentLoss(loss_weight=[3, 15, 15, 15])
    g = torch.Generator().manual_seed(2)
    s = [torch.randn(1, 2, 4, 4, generator=g) for _ in range(4)]
    t = [torch.randn(1, 2, 4, 4, generator=g) for _ in range(4)]
    out = loss(s, t)
    assert list(out) == ['loss_sdha_logits', 'loss_sdha_feat',
                         'loss_bfa_stage4', 'loss_bfa_stage3']
    for (name, value), w, a, b in zip(out.items(), [3, 15, 15, 15], s, t):
        assert value.item() == pytest.approx(
            w * _cwd_reference(a, b, 4.0), rel=1e-5)
    with pytest.raises(ValueError, match='4 alignment terms'):
        AlignmentLoss(loss_weight=[1, 2])


@pytest.mark.parametrize('size', ['S', 'B'])
def test_config_built_siam_loss_uses_tau_4_and_weights_3_15_15_15(size):
    """The training loss of a config-built model, term by term, against
    the independent CWD at the paper's tau 4 and weights [3, 15, 15, 15]
    (a temperature or weight changed in a model config or lost on the way
    to the loss changes these numbers)."""
    model = build_cfg_model(CITY_CONFIG[size])
    seen = []
    model.guidance_heads[0].loss_decode.register_forward_hook(
        lambda mod, args, out: seen.append(args))
    img = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        losses = model.loss(img, _samples(2, 64, 96))
    (feats_s, feats_t), = seen
    names = ['loss_sdha_logits', 'loss_sdha_feat', 'loss_bfa_stage4',
             'loss_bfa_stage3']
    for name, w, s, t in zip(names, [3, 15, 15, 15], feats_s, feats_t):
        ref = w * _cwd_reference(s, t, 4.0)
        assert ref > 1e-3  # the maps differ: a wrong tau shows
        assert losses['siam.' + name].item() == pytest.approx(ref, rel=1e-4)


def test_channel_statistics_are_matched():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 6, 5, 5, generator=g) * 4 + 2
    t = torch.randn(2, 6, 9, 9, generator=g) * torch.arange(1., 7.).view(
        1, 6, 1, 1) - 3
    out = match_channel_statistics(s, t)
    dims = (0, 2, 3)
    assert torch.allclose(out.mean(dims), t.mean(dims), atol=1e-4)
    assert torch.allclose(out.std(dims), t.std(dims), rtol=1e-4)


def test_pth_convert_refuses_to_overwrite_and_rejects_non_segformer(
        tmp_path, segformer_b2_ckpt):
    path, _ = segformer_b2_ckpt
    out = tmp_path / 'out.pth'
    out.write_bytes(b'keep me')
    res = subprocess.run([sys.executable, 'tools/pth_convert.py', path,
                          str(out)], capture_output=True, text=True)
    assert res.returncode != 0 and 'exists' in res.stderr
    assert out.read_bytes() == b'keep me'
    bogus = tmp_path / 'bogus.pth'
    torch.save({'state_dict': {'backbone.x': torch.zeros(1)}}, str(bogus))
    res = subprocess.run([sys.executable, 'tools/pth_convert.py', str(bogus),
                          str(tmp_path / 'o2.pth')], capture_output=True,
                         text=True)
    assert res.returncode != 0
    assert 'no decode_head.* tensors' in res.stderr
    assert 'not a SegFormer' in res.stderr


def test_teacher_projection_widths_follow_the_teacher_config():
    """A MiT-B0-sized teacher (32/64/160/256, head 256) gets matching
    projections; an explicit, inconsistent teacher_channels is refused."""
    cfg = Config.fromfile(CITY_CONFIG['S'])
    siam = copy.deepcopy(cfg.model.siam_head)
    siam.teacher_backbone.update(embed_dims=32, num_layers=[2, 2, 2, 2])
    siam.teacher_head.update(in_channels=[32, 64, 160, 256], num_classes=19)
    head = MODELS.build(siam)
    assert head.convstage3.out_channels == 160
    assert head.convstage4.out_channels == 256
    assert head.feature_transforms.out_channels == 1024
    siam.teacher_channels = dict(stage3=320, stage4=512, decoder=1024)
    with pytest.raises(ValueError, match='does not match'):
        MODELS.build(siam)


def test_pth_convert_reads_an_mmseg_0x_checkpoint(segformer_b2_ckpt, tmp_path):
    """A SegFormer checkpoint as MMSegmentation 0.x / mmcv-full 1.x wrote it
    (meta with CLASSES, PALETTE, config text, hook_msgs; AdamW state with int
    steps and tuple betas) converts, drops the training state and gives the
    same teacher logits as the 1.x-layout file."""
    path, segformer = segformer_b2_ckpt
    state = torch.load(path, weights_only=True)['state_dict']
    first = next(iter(state))
    old = tmp_path / 'segformer_b2_0x.pth'
    torch.save(
        dict(
            meta=dict(
                mmcv_version='1.6.0', mmseg_version='0.26.0',
                time='Mon Jun 13 10:00:00 2022', epoch=1, iter=160000,
                config="model = dict(type='EncoderDecoder')\n",
                CLASSES=('road', 'sidewalk') + tuple(
                    f'c{i}' for i in range(17)),
                PALETTE=[[128, 64, 128], [244, 35, 232]] + [[0, 0, i]
                                                           for i in range(17)],
                env_info='sys.platform: linux', seed=0,
                exp_name='segformer.py',
                hook_msgs=dict(last_ckpt='work_dirs/iter_160000.pth')),
            state_dict=state,
            optimizer=dict(
                state={0: dict(step=160000,
                               exp_avg=torch.zeros_like(state[first]),
                               exp_avg_sq=torch.zeros_like(state[first]))},
                param_groups=[dict(lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
                                   weight_decay=0.01, amsgrad=False,
                                   initial_lr=6e-5, params=[0])])),
        str(old))
    out = str(tmp_path / 'teacher_0x.pth')
    res = subprocess.run(
        [sys.executable, 'tools/pth_convert.py', str(old), out],
        capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert 'dropped auxiliary_head.*  1 tensors' in res.stdout
    converted = torch.load(out, weights_only=True)
    assert set(converted) == {
        'teacher_backbone.' + k[len('backbone.'):] if k.startswith(
            'backbone.') else 'teacher_head.' + k[len('decode_head.'):]
        for k in state if k.startswith(('backbone.', 'decode_head.'))}
    model = build_cfg_model(
        CITY_CONFIG['S'], **{'model.siam_head.teacher_checkpoint': out})
    model.init_weights()
    img = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = segformer._forward(img)
    ours = model.auxiliary_head[1].teacher_forward(img)['logits']
    assert ((ours - ref).abs().max() / ref.abs().max()).item() < 1e-4
