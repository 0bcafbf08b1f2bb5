"""Mixed precision (``tools/train.py --amp``): the losses stay fp32, the
CPU bf16 wrapper, the refusal, the NaN/inf guard with a loss scaler and a
real ``--amp`` run on this CPU.

The loss test runs a SIAM training step of SCTNet-S under
``torch.autocast`` and recomputes every loss term in float64 from the very
low-precision tensors the network produced (captured with forward hooks).
Tolerances: a term computed in fp32 from those tensors differs from the
float64 value by fp32 rounding only, measured at most 1.2e-7 (relative) for
the cross-entropies (a mean over 16,384 pixels) and 1.2e-6 for the CWD
terms (a KL sum over up to 2.6e5 positions with cancellation); so CE is
checked at 1e-6 and CWD at 1e-5. Computing a CWD term in bf16 instead
differs by 3e-3 to 1.2e-1, and resizing the logits in bf16 before the CE
(MMSegmentation's own path under CPU autocast) by 2.5e-6; the input the CE
module receives must also be float32, which catches the latter exactly.
"""
import json
import math
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers.models import CITY_CONFIG, build_cfg_model, randomize_state
from helpers.reliability import tiny_train_config
from helpers.tools import load_tool
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_sctnet.datasets import make_cityscapes
from mmseg_sctnet.engine import CPUBF16OptimWrapper, NonFiniteLossHook
from mmseg_sctnet.engine.training_run import build_train_config
from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.io.cpu import CPU_FLAGS_ENV, cpu_bf16_feature
from mmseg_sctnet.io.errors import NonFiniteLossError, UnsupportedDtypeError

SIAM_TERMS = {'loss_sdha_logits': 3.0, 'loss_sdha_feat': 15.0,
              'loss_bfa_stage4': 15.0, 'loss_bfa_stage3': 15.0}
NATIVE_BF16 = pytest.mark.skipif(
    cpu_bf16_feature() is None,
    reason='this CPU has no native bf16 (AVX512-BF16 / AMX-BF16): '
    '--amp is refused here, a real bf16 run cannot be tested')


def _samples(n, h, w, classes=19, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, classes, (1, h, w), generator=g)
        label[:, :4] = 255  # an ignored band
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        out.append(s)
    return out


def _cwd64(s, t, tau=4.0):
    """CWD in float64: per channel, softmax over the positions of map / tau,
    KL(teacher || student) * tau^2 / (N*C); the student resized to the
    teacher's size where they differ."""
    s, t = s.double(), t.double()
    if s.shape[2:] != t.shape[2:]:
        s = F.interpolate(s, t.shape[2:], mode='bilinear',
                          align_corners=False)
    n, c = s.shape[:2]
    log_t = torch.log_softmax(t.reshape(n, c, -1) / tau, -1)
    log_s = torch.log_softmax(s.reshape(n, c, -1) / tau, -1)
    return ((log_t.exp() * (log_t - log_s)).sum() * tau**2 / (n * c)).item()


def _ce64(logits, labels, weight):
    """MMSegmentation's CE as configured (mean over every pixel, ignored
    ones count 0) in float64, after the bilinear resize to the labels."""
    x = F.interpolate(logits.double(), labels.shape[-2:], mode='bilinear',
                      align_corners=False)
    ce = F.cross_entropy(x, labels, ignore_index=255, reduction='none')
    return weight * ce.sum().item() / labels.numel()


@pytest.mark.parametrize('device,dtype', [
    ('cpu', torch.bfloat16),
    pytest.param('cuda', torch.float16, marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason='needs a CUDA GPU')),
], ids=['cpu-bf16', 'cuda-fp16'])
def test_siam_step_losses_are_fp32_under_autocast(device, dtype):
    model = build_cfg_model(CITY_CONFIG['S'])
    model.init_weights()
    model.load_state_dict(randomize_state(model.state_dict(), seed=3))
    model.train().to(device)
    seen = {}
    model.decode_head.conv_seg.register_forward_hook(
        lambda m, a, out: seen.__setitem__('decode', out))
    model.auxiliary_head[0].conv_seg.register_forward_hook(
        lambda m, a, out: seen.__setitem__('aux', out))
    model.decode_head.loss_decode.register_forward_hook(
        lambda m, args, out: seen.__setitem__('ce_input', args[0]))
    guidance = model.guidance_heads[0]
    guidance.loss_decode.register_forward_hook(
        lambda m, args, out: seen.__setitem__('siam', args))
    img = torch.randn(2, 3, 64, 128,
                      generator=torch.Generator().manual_seed(1)).to(device)
    samples = [s.to(device) for s in _samples(2, 64, 128)]
    with torch.autocast(device, dtype=dtype):
        losses = model.loss(img, samples)

    # the network really ran in the low precision, the teacher too (without
    # gradients); the loss terms and the CE's input are float32
    assert seen['decode'].dtype == seen['aux'].dtype == dtype
    feats_s, feats_t = seen['siam']
    assert all(t.dtype == dtype and not t.requires_grad for t in feats_t)
    assert all(s.dtype == dtype and s.requires_grad for s in feats_s)
    assert seen['ce_input'].dtype == torch.float32
    names = ['decode.loss_ce', 'aux_0.loss_ce'] + [
        'siam.' + k for k in SIAM_TERMS]
    for name in names:
        assert losses[name].dtype == torch.float32, name
        assert torch.isfinite(losses[name]), name

    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples]).cpu()
    for name, logits, w in (('decode.loss_ce', seen['decode'], 1.0),
                            ('aux_0.loss_ce', seen['aux'], 0.4)):
        assert losses[name].item() == pytest.approx(
            _ce64(logits.cpu(), labels, w), rel=1e-6), name
    for (key, w), s, t in zip(SIAM_TERMS.items(), feats_s, feats_t):
        ref = w * _cwd64(s.detach().cpu(), t.cpu())
        assert ref > 1e-3, key  # the maps differ: the check can fail
        assert losses['siam.' + key].item() == pytest.approx(
            ref, rel=1e-5), key


def test_fp32_losses_unchanged_outside_autocast():
    """Without autocast the fp32 guards change nothing: the decode CE equals
    MMSegmentation's own loss computation on the same logits bit for bit."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    model = build_cfg_model(CITY_CONFIG['S'], **{'model.use_siam': False})
    model.train()
    logits = torch.randn(2, 19, 8, 16,
                         generator=torch.Generator().manual_seed(2))
    samples = _samples(2, 64, 128)
    ours = model.decode_head.loss_by_feat(logits, samples)
    theirs = BaseDecodeHead.loss_by_feat(model.decode_head, logits, samples)
    assert torch.equal(ours['loss_ce'], theirs['loss_ce'])
    assert torch.equal(ours['acc_seg'], theirs['acc_seg'])


def _wrapper(model):
    return CPUBF16OptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_cpu_bf16_wrapper_autocasts_forward_and_steps_in_fp32(monkeypatch):
    """The wrapper's context is bf16 autocast on the CPU; backward and the
    step stay fp32 (no loss scaler). Built on any CPU by faking the flag:
    bf16 then runs emulated, which is fine for this check."""
    monkeypatch.setenv(CPU_FLAGS_ENV, 'avx2 amx_bf16')
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    wrapper = _wrapper(model)
    assert not hasattr(wrapper, 'loss_scaler')
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        out = model(x)
    assert out.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    loss = out.float().square().mean()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    assert not torch.equal(model.weight, before)
    # the update is plain SGD on the (unscaled) gradient; autograd computes
    # it through the bf16 matmul, hence bf16's 2**-8 relative precision
    grad = 2 * (out.float().detach().T @ x / 15)
    torch.testing.assert_close(model.weight.detach(), before - 0.1 * grad,
                               rtol=1e-2, atol=1e-5)


def test_cpu_bf16_wrapper_is_refused_without_native_bf16(monkeypatch):
    monkeypatch.setenv(CPU_FLAGS_ENV, 'avx2 fma')
    with pytest.raises(UnsupportedDtypeError) as e:
        _wrapper(torch.nn.Linear(2, 2))
    msg = str(e.value)
    assert "optim_wrapper.type='CPUBF16OptimWrapper'" in msg
    assert 'avx512_bf16 / amx_bf16' in msg and f'${CPU_FLAGS_ENV}' in msg
    assert "optim_wrapper.type='OptimWrapper'" in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU-only box')
def test_amp_picks_the_wrapper_for_the_cpu(monkeypatch, tmp_path):
    cfg_file = tiny_train_config(str(tmp_path / 'cfg.py'), str(tmp_path))
    monkeypatch.setenv(CPU_FLAGS_ENV, 'avx2 avx512_bf16')
    cfg = build_train_config(cfg_file, str(tmp_path / 'w1'), amp=True)
    assert cfg.optim_wrapper.type == 'CPUBF16OptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'  # the rest is kept
    assert 'loss_scale' not in cfg.optim_wrapper
    assert build_train_config(cfg_file, str(tmp_path / 'w2')).optim_wrapper \
        .type == 'OptimWrapper'
    monkeypatch.setenv(CPU_FLAGS_ENV, 'avx2 fma')
    with pytest.raises(UnsupportedDtypeError) as e:
        build_train_config(cfg_file, str(tmp_path / 'w3'), amp=True)
    assert str(e.value).startswith('--amp needs a CUDA GPU')
    assert 'train without --amp' in str(e.value)


# ---------------------------------------------------------------- the guard
class _Scaled:
    """One parameter, SGD and a real dynamic ``GradScaler``: what
    ``AmpOptimWrapper`` does in ``update_params`` (scale, backward, step,
    update), on the CPU."""

    def __init__(self, static=False):
        self.p = torch.nn.Parameter(torch.ones(3))
        self.opt = torch.optim.SGD([self.p], lr=0.1)
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)
        self.static = static

    def step(self, hook, runner, loss):
        hook.before_train_iter(runner, 0)
        self.opt.zero_grad()
        self.loss_scaler.scale(loss).backward()
        self.loss_scaler.step(self.opt)
        self.loss_scaler.update(2.**10 if self.static else None)
        hook.after_train_iter(runner, 0, outputs=dict(loss=loss.detach()))
        runner.iter += 1


def _runner(tmp_path, wrapper):
    return SimpleNamespace(optim_wrapper=wrapper, iter=0,
                           work_dir=str(tmp_path), cfg=Config())


def test_guard_tolerates_skipped_fp16_steps_and_stops_on_nan(tmp_path):
    w = _Scaled()
    hook = NonFiniteLossHook(amp_patience=2)
    runner = _runner(tmp_path, w)
    # gradients overflow at this scale, the loss is finite: the scaler
    # skips the step, the guard has nothing to say
    w.loss_scaler = torch.amp.GradScaler('cpu', init_scale=3e38)
    w.step(hook, runner, (w.p * 10).sum())
    assert w.loss_scaler.get_scale() < 3e38 and torch.equal(
        w.p.detach(), torch.ones(3))
    w.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)
    # an infinite loss whose step the scaler skipped: tolerated twice
    for _ in range(2):
        w.step(hook, runner, (w.p * float('inf')).sum())
    assert torch.equal(w.p.detach(), torch.ones(3))  # never updated
    w.step(hook, runner, w.p.sum())  # a good step resets the count
    for _ in range(2):
        w.step(hook, runner, (w.p * float('inf')).sum())
    with pytest.raises(NonFiniteLossError, match='3 iterations in a row'):
        w.step(hook, runner, (w.p * float('inf')).sum())
    # a NaN loss stops at once, even though the scaler skips its step
    runner.iter = 0
    hook = NonFiniteLossHook(amp_patience=2)
    with pytest.raises(NonFiniteLossError) as e:
        w.step(hook, runner, (w.p * float('nan')).sum())
    assert 'Training stopped at iteration 1' in str(e.value)
    assert 'loss=nan' in str(e.value)


def test_guard_stops_on_inf_without_a_skipped_step(tmp_path):
    """A static loss scale never goes down: the guard cannot tell that the
    step was skipped and stops; so does the bf16 wrapper (no scaler)."""
    w = _Scaled(static=True)
    hook = NonFiniteLossHook()
    with pytest.raises(NonFiniteLossError, match='loss=inf'):
        w.step(hook, _runner(tmp_path, w), (w.p * float('inf')).sum())
    runner = _runner(tmp_path, SimpleNamespace())  # no loss_scaler
    hook.before_train_iter(runner, 0)
    with pytest.raises(NonFiniteLossError, match='loss=inf'):
        hook.after_train_iter(runner, 0,
                              outputs=dict(loss=torch.tensor(math.inf)))


# ------------------------------------------------------------ real runs
@pytest.fixture(scope='module')
def demo_like_data(tmp_path_factory):
    d = tmp_path_factory.mktemp('amp_data')
    return make_cityscapes(str(d / 'data'), n_train=2, n_val=1,
                           size=(64, 128))


@NATIVE_BF16
def test_train_tool_amp_runs_on_this_cpu(demo_like_data, tmp_path):
    """tools/train.py --amp, 2 SIAM iterations (random teacher) on
    generated data: bf16 autocast through CPUBF16OptimWrapper, finite
    losses, an fp32 checkpoint."""
    cfg = tiny_train_config(str(tmp_path / 'cfg.py'), demo_like_data,
                            max_iters=2, ckpt_interval=2, use_siam=True)
    work = str(tmp_path / 'work')
    runner = load_tool('train').main([cfg, '--amp', '--work-dir', work])
    assert isinstance(runner.optim_wrapper, CPUBF16OptimWrapper)
    assert runner.iter == 2
    (log_dir, ) = [osp.join(work, d, 'vis_data') for d in os.listdir(work)
                   if osp.isdir(osp.join(work, d, 'vis_data'))]
    with open(osp.join(log_dir, 'scalars.json')) as f:
        recs = [json.loads(line) for line in f]
    trained = [r for r in recs if 'siam.loss_bfa_stage3' in r]
    assert len(trained) == 2
    assert all(math.isfinite(r['loss']) for r in trained)
    state = safe_torch_load(osp.join(work, 'iter_2.pth'))['state_dict']
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)
    assert all(torch.isfinite(v).all() for v in floats)


@NATIVE_BF16
def test_demo_student_passes_amp(demo_like_data, tmp_path):
    """experiments.demo.train_student(amp=True): tools/train.py --amp on
    the demo config (one iteration, no SIAM)."""
    from mmengine.hooks import Hook
    from mmseg_sctnet.experiments.demo import data_options, train_student

    class Spy(Hook):
        wrapper = None

        def before_train(self, runner):
            Spy.wrapper = runner.optim_wrapper

    out = train_student(str(tmp_path), data_options(demo_like_data, 2, 0),
                        None, iters=1, hooks=[Spy()], amp=True)
    assert isinstance(Spy.wrapper, CPUBF16OptimWrapper)
    assert out['amp'] is True and ' --amp ' in out['command']


def test_demo_refuses_amp_before_making_data(monkeypatch, tmp_path):
    from mmseg_sctnet.experiments.demo import run_demo
    if torch.cuda.is_available():
        pytest.skip('a CUDA GPU runs --amp')
    monkeypatch.setenv(CPU_FLAGS_ENV, 'avx2 fma')
    with pytest.raises(UnsupportedDtypeError, match='--amp needs'):
        run_demo(str(tmp_path / 'out'), str(tmp_path / 'data'), amp=True)
    assert not (tmp_path / 'data').exists()
    assert not (tmp_path / 'out').exists()


def test_demo_cli_refuses_amp_with_ablation(capsys):
    demo = load_tool('demo')
    with pytest.raises(SystemExit):
        demo.parse_args(['--ablation', '--amp'])
    assert '--amp: not with --ablation' in capsys.readouterr().err
    assert demo.parse_args(['--amp']).amp
