"""SIAM for other students and other teachers (docs/siam.md, "Distil your
own student from your own teacher").

* The generic taps compute SCTNet's SIAM exactly as before: an official
  config, its official model section (``in_index=2``) and the same config
  with the taps written out give bit-identical losses and gradients, and
  the terms equal an independent computation with MMSegmentation's own
  SegFormer modules and a float64 CWD.
* Other students (MMSegmentation's DDRNet-23-slim and PIDNet-S, whose
  backbones return several outputs in training): module taps read exactly
  the named tensors and carry the gradient into the student; a training
  step updates the student and the projections, never the teacher.
* Another teacher (ConvNeXt + UPerHead): its features before fusion are
  the input of ``fpn_bottleneck``, its logits MMSegmentation's own; it
  converts with tools/pth_convert.py and also loads unconverted; a head
  without a split is refused, and a registered split makes it usable.
* Bad taps stop with one message naming the config value and the tensor.
* Every config of configs/siam trains two iterations with tools/train.py.
"""
import copy
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from helpers.models import CITY_CONFIG, TESTS, build_cfg_model, \
    randomize_state
from helpers.siam import (ALIGN_TERMS, DDRNET, PIDNET, SCTNET_FROM_UPERNET,
                          SEGFORMER_TEACHER, UPERNET_TEACHER, batch,
                          cwd_reference, write_teacher_checkpoint)
from helpers.tools import load_tool
from helpers.train import small_run_options

from mmseg_sctnet.datasets import make_cityscapes
from mmseg_sctnet.io.errors import ConfigError
from mmseg_sctnet.models.decode_heads.teacher_head_split import (
    HEAD_SPLITS, TeacherHeadSplit)
from mmseg_sctnet.pretrain.teacher import convert_teacher

SMALL = {'model.data_preprocessor.size': (64, 128)}
WEIGHTS = (3.0, 15.0, 15.0, 15.0)


def _loss_and_grads(model, img, samples):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # the same DropPath draws
    losses = model.loss(img, samples)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return losses, grads


# ---------------------------------------------------------------- SCTNet
def test_official_layout_is_bit_identical_to_explicit_taps():
    section = json.load(open(osp.join(
        TESTS, 'data', 'official_model_sections.json')))['models'][
            'sctnet-s_seg50_8x2_160k_cityscapes.py']
    section['backbone']['init_cfg'] = None
    official = MODELS.build(section)  # in_index=2, no teacher architecture
    default = build_cfg_model(CITY_CONFIG['S'])  # base_channels, in_index
    explicit = build_cfg_model(
        CITY_CONFIG['S'], **{
            'model.siam_head.student_taps': dict(
                decoder=dict(index=0, channels=128),
                stage3=dict(index=2, channels=128),
                stage4=dict(index=3, channels=256)),
            'model.siam_head.teacher_taps': dict(
                stage3=dict(index=2, channels=320),
                stage4=dict(index=3, channels=512)),
        })
    state = randomize_state(default.state_dict(), seed=4)
    img, samples = batch(h=64, w=96, classes=19, seed=1)
    runs = []
    for model in (default, official, explicit):
        model.load_state_dict(state)
        model.train()
        runs.append(_loss_and_grads(model, img, samples))
    (losses, grads), others = runs[0], runs[1:]
    assert len(grads) == sum(1 for n, _ in default.named_parameters()
                             if '.teacher_' not in n)
    for other_losses, other_grads in others:
        assert list(other_losses) == list(losses)
        assert all(torch.equal(other_losses[k], v) for k, v in losses.items())
        assert sorted(other_grads) == sorted(grads)
        assert all(torch.equal(other_grads[k], v) for k, v in grads.items())

    # the four terms, computed independently: MMSegmentation's own
    # SegFormer modules with the teacher's tensors, F.conv2d projections,
    # the re-standardisation written out and a float64 CWD
    cfg = Config.fromfile(CITY_CONFIG['S']).model.siam_head
    seg = MODELS.build(
        dict(type='EncoderDecoder', backbone=cfg.teacher_backbone,
             decode_head=dict(cfg.teacher_head, num_classes=19,
                              norm_cfg=dict(type='BN'))))
    p = 'auxiliary_head.1.'
    seg.load_state_dict({
        k[len(p + 'teacher_'):].replace('head.', 'decode_head.', 1)
        if k.startswith(p + 'teacher_head.') else
        k[len(p + 'teacher_'):]: v
        for k, v in state.items() if k.startswith(p + 'teacher_')})
    seg.eval()
    default.eval()
    with torch.no_grad():
        losses = default.loss(img, samples)
        x = default.extract_feat(img)
        stages = seg.backbone(img)
        head = seg.decode_head
        concat = torch.cat([
            F.interpolate(conv(s), stages[0].shape[2:], mode='bilinear',
                          align_corners=False)
            for conv, s in zip(head.convs, stages)], 1)
        t_dec, t_logits = head.fusion_conv(concat), seg._forward(img)
        proj = {n: (state[p + n + '.weight'], state[p + n + '.bias'])
                for n in ('feature_transforms', 'convstage3', 'convstage4')}
        s3 = F.conv2d(x[2], *proj['convstage3'])
        s4 = F.conv2d(x[3], *proj['convstage4'])
        f = F.interpolate(F.conv2d(x[0], *proj['feature_transforms']),
                          concat.shape[2:], mode='bilinear',
                          align_corners=False)
        dims = (0, 2, 3)
        f = (f - f.mean(dims, keepdim=True)) / (
            f.std(dims, keepdim=True) + 1e-6) * concat.std(
                dims, keepdim=True) + concat.mean(dims, keepdim=True)
        s_dec = head.fusion_conv(f)
        pairs = [(head.conv_seg(s_dec), t_logits), (s_dec, t_dec),
                 (s4, stages[3]), (s3, stages[2])]
    for name, w, (s, t) in zip(ALIGN_TERMS, WEIGHTS, pairs):
        ref = w * cwd_reference(s, t)
        assert ref > 1e-3, name
        assert losses[name].item() == pytest.approx(ref, rel=1e-4), name


# ------------------------------------------------------- other students
def test_module_taps_read_the_named_tensors_and_carry_gradients():
    """DDRNet: decoder = backbone output 1 (training), stage 3 / 4 = the
    inputs of context_branch_layers.1 / .2 (hooks). A tap on the output of
    context_branch_layers.0, which DDRNet then changes in place
    (``x_c += ...``), keeps the value the module returned."""
    model = build_cfg_model(DDRNET, **SMALL)
    model.init_weights()
    model.train()
    bb, head = model.backbone, model.guidance_heads[0]
    seen, projected = {}, {}
    bb.context_branch_layers[1].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('stage3', a[0].detach().clone()))
    bb.context_branch_layers[2].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('stage4', a[0].detach().clone()))
    bb.register_forward_hook(
        lambda m, a, out: seen.__setitem__('outputs', out))
    for name in ('feature_transforms', 'convstage3', 'convstage4'):
        getattr(head, name).register_forward_hook(
            lambda m, a, o, name=name: projected.__setitem__(name, a[0]))
    img, samples = batch()
    losses = model.loss(img, samples)
    assert len(seen['outputs']) == 2  # DDRNet in training
    assert torch.equal(projected['feature_transforms'], seen['outputs'][1])
    assert torch.equal(projected['convstage3'], seen['stage3'])
    assert torch.equal(projected['convstage4'], seen['stage4'])
    assert seen['stage3'].shape == (2, 128, 4, 8)  # 1/16
    assert seen['stage4'].shape == (2, 256, 2, 4)  # 1/32
    # BFA's stage-3 term reaches the student through the hook, and only
    # the stage-3 projection among the projections
    losses['siam.loss_bfa_stage3'].backward()
    assert head.convstage3.weight.grad.abs().sum() > 0
    assert head.convstage4.weight.grad is None
    for branch in (bb.context_branch_layers, bb.spatial_branch_layers):
        assert branch[0][0].conv1.conv.weight.grad.abs().sum() > 0
    # a deep copy of the model (its hooks included) taps its own modules
    twin = copy.deepcopy(model)
    twin_losses = twin.loss(img, samples)
    assert torch.equal(twin_losses['siam.loss_bfa_stage4'],
                       losses['siam.loss_bfa_stage4'])

    model = build_cfg_model(
        DDRNET, **SMALL, **{'model.siam_head.student_taps.stage3': dict(
            _delete_=True, module='backbone.context_branch_layers.0',
            channels=128)})
    model.train()
    returned = {}

    def keep(m, a, out):
        returned['value'], returned['object'] = out.detach().clone(), out

    model.backbone.context_branch_layers[0].register_forward_hook(keep)
    projected.clear()
    model.guidance_heads[0].convstage3.register_forward_hook(
        lambda m, a, o: projected.__setitem__('stage3', a[0]))
    model.loss(img, samples)
    assert torch.equal(projected['stage3'], returned['value'])
    assert not torch.equal(returned['object'], returned['value'])  # fused


@pytest.mark.parametrize(
    'config,teacher',
    [(DDRNET, None), (PIDNET, None), (SCTNET_FROM_UPERNET, None),
     (DDRNET, UPERNET_TEACHER)],
    ids=['ddrnet', 'pidnet', 'sctnet_from_upernet', 'ddrnet_from_upernet'])
def test_training_step_updates_student_not_teacher(config, teacher):
    cfg = Config.fromfile(config)
    other = {'model.siam_head.teacher_config': teacher} if teacher else {}
    model = build_cfg_model(config, **SMALL, **other)
    model.init_weights()  # random teacher: no file needed here
    model.train()
    head = model.guidance_heads[0]
    if teacher:  # the projections follow the UPerNet teacher's widths
        assert head.teacher_widths == dict(stage3=160, stage4=320,
                                           decoder=256)
        assert type(head.teacher_head).__name__ == 'UPerHead'
    teacher = [head.teacher_backbone, head.teacher_head]
    # the SIAM head's tensors (everything else is the student's): after
    # SCTNet's auxiliary head, or first where the student has none
    idx = 1 if config == SCTNET_FROM_UPERNET else 0
    assert model.siam_prefixes == (f'auxiliary_head.{idx}.', )
    assert {k for k in model.state_dict() if k.startswith(
        model.siam_prefixes)} == {f'auxiliary_head.{idx}.' + k
                                  for k in head.state_dict()}
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    grouped = {id(p) for g in wrapper.optimizer.param_groups
               for p in g['params']}
    assert not any(id(p) in grouped for m in teacher for p in m.parameters())
    assert len(grouped) == sum(1 for n, _ in model.named_parameters()
                               if '.teacher_' not in n)
    img, samples = batch(seed=2)
    losses = model.loss(img, samples)
    for name in ALIGN_TERMS:
        assert torch.isfinite(losses[name]) and losses[name] > 0, name
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name in ('feature_transforms', 'convstage3', 'convstage4'):
        assert getattr(head, name).weight.grad.abs().sum() > 0, name
    assert all(p.grad is None for m in teacher for p in m.parameters())
    student = [p for n, p in model.named_parameters()
               if n.startswith(('backbone.', 'decode_head.'))]
    assert sum(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in student) > 0.9 * len(student)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 128),
                                      dtype=torch.uint8) for _ in range(2)],
                data_samples=samples)
    log_vars = model.train_step(data, wrapper)
    assert all(k in log_vars for k in ALIGN_TERMS)
    after = model.state_dict()
    frozen = [k for k in before if '.teacher_' in k]
    assert frozen and any(k.endswith('running_var') for k in frozen)
    assert all(torch.equal(after[k], before[k]) for k in frozen)
    assert not any(m.training for t in teacher for m in t.modules())
    changed = [k for k in before if '.teacher_' not in k
               and not torch.equal(after[k], before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert any('.convstage3.' in k for k in changed)


# ------------------------------------------------------- another teacher
@pytest.fixture(scope='module')
def upernet_teacher(tmp_path_factory):
    """An MMSegmentation checkpoint of the ConvNeXt UPerNet teacher (with
    its auxiliary FCN head) and the model it holds."""
    d = tmp_path_factory.mktemp('upernet')
    seg = write_teacher_checkpoint(UPERNET_TEACHER, d / 'iter_300.pth')
    return str(d / 'iter_300.pth'), seg


@pytest.mark.parametrize('converted', [True, False],
                         ids=['converted', 'unconverted'])
def test_uperhead_teacher_is_mmseg_upernet(upernet_teacher, converted,
                                           tmp_path):
    path, seg = upernet_teacher
    if converted:
        out = str(tmp_path / 'teacher.pth')
        res = convert_teacher(path, out)
        assert res['classes'] == 8
        assert res['teacher'].startswith(
            'ConvNeXt (stage widths [40, 80, 160, 320], depths [2, 2, 6, 2])')
        assert res['teacher'].endswith('teacher with a UPerHead')
        aux = [k for k in seg.state_dict() if k.startswith('auxiliary_head.')]
        assert aux and res['dropped'] == {'auxiliary_head': len(aux)}
        path = out
    model = build_cfg_model(
        SCTNET_FROM_UPERNET,
        **{'model.siam_head.teacher_checkpoint': path})
    model.init_weights()
    head = model.guidance_heads[0]
    assert head.teacher_widths == dict(stage3=160, stage4=320, decoder=256)
    img = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        t = head.teacher_forward(img)
        stages = seg.backbone(img)
        ref = seg._forward(img)  # MMSegmentation's own UPerNet logits
        up = seg.decode_head
        assert t['concat'].shape == (2, 256, 16, 24)  # 4 x 64 at 1/4
        assert torch.equal(up.fpn_bottleneck(t['concat']), t['decoder'])
        assert torch.allclose(up._forward_feature(stages), t['decoder'],
                              rtol=0, atol=1e-6)
    assert ref.std() > 0.05 * ref.abs().max()
    assert ((t['logits'] - ref).abs().max() / ref.abs().max()) < 1e-5
    assert torch.allclose(t['stage3'], stages[2], rtol=0, atol=1e-6)
    assert torch.allclose(t['stage4'], stages[3], rtol=0, atol=1e-6)


def test_head_without_split_is_refused_and_a_registered_split_works(
        monkeypatch):
    fcn = dict(type='FCNHead', in_channels=160, in_index=2, channels=64,
               num_convs=2, concat_input=False, num_classes=8)
    siam = Config.fromfile(DDRNET).model.siam_head
    siam.update(teacher_config=None, teacher_backbone=dict(
        type='MixVisionTransformer', embed_dims=32, num_layers=[1, 1, 1, 1],
        num_heads=[1, 2, 5, 8]),
        teacher_head=fcn,
        teacher_taps=dict(stage3=dict(index=2), stage4=dict(index=3,
                                                            channels=256)))
    with pytest.raises(ConfigError) as err:
        MODELS.build(siam.to_dict())
    msg = str(err.value)
    for part in ('FCNHead', 'TeacherHeadSplit', 'fusion=',
                 'concat_channels', "@register_head_split('FCNHead')",
                 'SegformerHead', 'UPerHead'):
        assert part in msg, part

    class FCNHeadSplit(TeacherHeadSplit):  # features = the selected stage
        fusion = 'convs'

        def concat_channels(self, head_cfg):
            return head_cfg['in_channels']

    monkeypatch.setitem(HEAD_SPLITS, 'FCNHead', FCNHeadSplit)
    head = MODELS.build(siam.to_dict())
    assert head.feature_transforms.out_channels == 160
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        t = head.teacher_forward(img)
        assert torch.equal(t['concat'], t['stage3'])  # FCNHead's input
        assert torch.equal(t['logits'], head.teacher_head(
            head.teacher_backbone(img)))


# -------------------------------------------------------------- mistakes
BAD_TAPS = [
    ('decoder', dict(index=2, channels=128),
     ['student_taps.decoder.index=2', '2 outputs',
      '[0] (2, 64, 8, 16)', '[1] (2, 128, 8, 16)']),
    ('decoder', dict(index=0, channels=128),
     ['student_taps.decoder', 'channels=128', '(2, 64, 8, 16)']),
    ('stage3', dict(module='backbone.context_branch_layers.1', port='input',
                    channels=64),
     ['student_taps.stage3', "'backbone.context_branch_layers.1'",
      'channels=64', '(2, 128, 4, 8)']),
    ('stage4', dict(_delete_=True, module='backbone.relu', channels=256),
     ["'backbone.relu'", 'ran 8 times', 'exactly once']),
]


@pytest.mark.parametrize('tap,value,says', BAD_TAPS,
                         ids=['index', 'width', 'module_width', 'shared'])
def test_bad_student_tap_names_config_and_model_shapes(tap, value, says):
    model = build_cfg_model(
        DDRNET, **SMALL, **{f'model.siam_head.student_taps.{tap}': value})
    model.train()
    with pytest.raises(ConfigError) as err:
        model.loss(*batch())
    for part in says:
        assert part in str(err.value), (part, str(err.value))


def test_bad_teacher_tap_and_config_mistakes(tmp_path):
    model = build_cfg_model(
        DDRNET, **SMALL, **{'model.siam_head.teacher_taps': dict(
            stage3=dict(index=2, channels=999), stage4=dict(index=3))})
    model.train()
    with pytest.raises(ConfigError) as err:
        model.loss(*batch())
    assert 'teacher_taps.stage3' in str(err.value)
    assert 'channels=999' in str(err.value)
    assert '(2, 160, 4, 8)' in str(err.value)
    # a module the student does not have: refused when built, with the
    # names that exist
    with pytest.raises(ConfigError) as err:
        build_cfg_model(DDRNET, **{
            'model.siam_head.student_taps.stage3.module':
            'backbone.context_branch_layer.1'})
    assert "'backbone.context_branch_layer.1'" in str(err.value)
    assert 'context_branch_layers' in str(err.value)
    with pytest.raises(ConfigError, match='not both'):
        build_cfg_model(DDRNET, **{
            'model.siam_head.student_taps.decoder.module': 'backbone.spp'})
    # a teacher trained on inputs normalised otherwise
    other = tmp_path / 'teacher_other_mean.py'
    other.write_text(f'_base_ = [{osp.abspath(SEGFORMER_TEACHER)!r}]\n'
                     'model = dict(data_preprocessor=dict(mean=[0, 0, 0]))\n')
    with pytest.raises(ConfigError) as err:
        build_cfg_model(DDRNET,
                        **{'model.siam_head.teacher_config': str(other)})
    assert str(other) in str(err.value)
    assert 'data_preprocessor' in str(err.value)
    assert "'mean': [0.0, 0.0, 0.0]" in str(err.value)


# ------------------------------------------------- the configs train
@pytest.fixture(scope='module')
def city(tmp_path_factory):
    return make_cityscapes(
        str(tmp_path_factory.mktemp('siam_data')), n_train=2, n_val=1,
        size=(64, 128))


def _train(config, work_dir, city, extra=()):
    opts = small_run_options(city, crop=(64, 128), test_scale=(128, 64),
                             iters=2) + list(extra)
    return load_tool('train').main(
        [config, '--work-dir', str(work_dir), '--cfg-options', *opts])


@pytest.mark.parametrize('use_siam', [True, False], ids=['siam', 'no_siam'])
@pytest.mark.parametrize('config', [DDRNET, PIDNET],
                         ids=['ddrnet', 'pidnet'])
def test_student_configs_train(config, use_siam, city, tmp_path):
    extra = [f'model.use_siam={use_siam}']
    if use_siam:  # an unconverted MMSegmentation checkpoint of the teacher
        teacher = tmp_path / 'segformer.pth'
        write_teacher_checkpoint(SEGFORMER_TEACHER, teacher)
        extra.append(f'model.siam_head.teacher_checkpoint={teacher}')
    runner = _train(config, tmp_path / 'work', city, extra)
    assert len(runner.model.guidance_heads) == int(use_siam)
    logged = runner.message_hub.log_scalars
    assert all((f'train/{k}' in logged) == use_siam for k in ALIGN_TERMS)
    assert 'val/mIoU' in logged
    ckpt = torch.load(str(tmp_path / 'work' / 'iter_2.pth'),
                      weights_only=False)
    assert any('.teacher_backbone.' in k
               for k in ckpt['state_dict']) == use_siam


def test_upernet_teacher_trains_converts_and_teaches_sctnet(city, tmp_path):
    """The non-SegFormer chain: train the UPerNet teacher, convert it,
    train SCTNet-S with SIAM from it."""
    _train(UPERNET_TEACHER, tmp_path / 'teacher', city)
    teacher = str(tmp_path / 'teacher.pth')
    res = convert_teacher(str(tmp_path / 'teacher' / 'iter_2.pth'), teacher)
    assert 'UPerHead' in res['teacher']
    runner = _train(SCTNET_FROM_UPERNET, tmp_path / 'student', city,
                    [f'model.siam_head.teacher_checkpoint={teacher}'])
    head = runner.model.guidance_heads[0]
    trained = torch.load(teacher, weights_only=True)
    state = head.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trained.items())
    assert osp.isfile(str(tmp_path / 'student' / 'iter_2.pth'))
