"""Deploy mode: exact BN folding, same outputs as eager, deploy checkpoints."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers.tools import load_tool
from helpers.models import (CITY_CONFIG, randomize_state,
                           write_official_checkpoint)
from helpers.reference_sctnet import sctnet_logits
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_sctnet.models.layers import (DeployConvAttention,
                                        PreNormConv2d,
                                        bn_scale_shift,
                                        fuse_conv_bn)
from mmseg_sctnet.deploy import (SegmentorWithResize,
                                 build_inference_model,
                                 deploy_modules,
                                 is_deployed,
                                 load_inference_model,
                                 switch_to_deploy)

# README: deploy outputs equal eager mode within 3.3e-6 (relative); the
# tests measure 0.8e-6 to 1.5e-6 here (tiny BN variances included)
TOL = 3.3e-6
_EAGER = {}


def eager_model(size):
    """Inference segmentor with random weights and BN statistics."""
    if size not in _EAGER:
        m = build_inference_model(CITY_CONFIG[size], init_weights=False)
        m.load_state_dict(randomize_state(m.state_dict(), seed=3))
        _EAGER[size] = m.eval()
    return _EAGER[size]


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _random_bn(c, g, eps=1e-5):
    bn = nn.BatchNorm2d(c, eps=eps).eval()
    bn.running_mean.copy_(torch.randn(c, generator=g))
    bn.running_var.copy_(torch.rand(c, generator=g) + 0.3)
    bn.weight.data.copy_(1 + 0.3 * torch.randn(c, generator=g))
    bn.bias.data.copy_(torch.randn(c, generator=g))
    return bn


@pytest.mark.parametrize('kernel,padding', [((3, 3), (1, 1)), ((7, 1), (3, 0)),
                                            ((1, 7), (0, 3)), ((5, 3), (2, 1)),
                                            ((1, 1), (0, 0))])
def test_prenorm_fold_is_exact_at_every_size(kernel, padding):
    g = torch.Generator().manual_seed(0)
    bn = _random_bn(6, g).double()
    w = torch.randn(4, 6, *kernel, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    s, t = bn_scale_shift(bn)
    m = PreNormConv2d(w, b, s, t, padding)
    for h, wd in [(1, 1), (2, 3), (3, 2), (4, 9), (7, 7), (11, 6)]:
        x = torch.randn(2, 6, h, wd, generator=g, dtype=torch.float64)
        ref = F.conv2d(bn(x), w, b, padding=padding)
        for cl in (False, True):
            xx = x.contiguous(memory_format=torch.channels_last) if cl else x
            # float64: equal up to rounding, i.e. exact, not approximate
            assert rel_err(m(xx), ref) < 1e-12, (h, wd, cl)
        m.general_path = True
        assert rel_err(m(x), ref) < 1e-12
        m.general_path = False


def test_naive_prenorm_fold_would_be_wrong_at_the_borders():
    """Why PreNormConv2d exists: folding the shift into the bias is wrong
    where the kernel covers the zero padding (and right inside)."""
    g = torch.Generator().manual_seed(1)
    bn = _random_bn(6, g).double()
    w = torch.randn(4, 6, 3, 3, generator=g, dtype=torch.float64)
    s, t = bn_scale_shift(bn)
    naive_w = w * s.view(1, -1, 1, 1)
    naive_b = (w * t.view(1, -1, 1, 1)).sum((1, 2, 3))
    x = torch.randn(1, 6, 8, 8, generator=g, dtype=torch.float64)
    ref = F.conv2d(bn(x), w, padding=1)
    naive = F.conv2d(x, naive_w, naive_b, padding=1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert rel_err(naive[inner], ref[inner]) < 1e-12
    assert rel_err(naive, ref) > 1e-3
    assert rel_err(PreNormConv2d(w, None, s, t, (1, 1))(x), ref) < 1e-12


def test_post_norm_fold_and_untracked_bn():
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(5, 7, 3, stride=2, padding=1, bias=False)
    bn = _random_bn(7, g)
    x = torch.randn(2, 5, 9, 11, generator=g)
    assert rel_err(fuse_conv_bn(conv, bn)(x), bn(conv(x))) < 1e-5
    with pytest.raises(ValueError, match='running statistics'):
        bn_scale_shift(nn.BatchNorm2d(3, track_running_stats=False))


@pytest.mark.parametrize('size,hw,opts', [
    ('S', (64, 128), {}),
    ('S', (97, 131), {}),  # odd size
    ('S', (97, 131), dict(fold_prenorm=False)),
    ('S', (75, 45), dict(channels_last=False)),
    ('B', (64, 128), {}),
    ('B', (97, 131), {}),  # odd size
    ('B', (40, 72), {}),  # 1/32 map 2x3: smaller than the 7-tap padding
])
def test_deploy_equals_eager(size, hw, opts):
    eager = eager_model(size)
    deployed = switch_to_deploy(copy.deepcopy(eager), **opts)
    x = torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        ref = SegmentorWithResize(eager)(x)
        out = SegmentorWithResize(deployed)(x)
    assert out.shape == ref.shape == (1, 19, *hw)
    assert rel_err(out, ref) < TOL
    # and the independent functional reference of the network
    sd = {k: v for k, v in eager.state_dict().items()
          if not k.startswith('auxiliary_head')}
    with torch.inference_mode():
        logits = deployed._forward(x)
    assert rel_err(logits, sctnet_logits(sd, x)) < TOL


def test_deployed_structure():
    deployed = switch_to_deploy(copy.deepcopy(eager_model('S')))
    assert is_deployed(deployed) and deployed.auxiliary_head is None
    assert is_deployed(deployed.backbone)
    bb = deployed.backbone
    for block in (bb.layer3_2, bb.layer4, bb.layer5):  # each block's own form
        assert isinstance(block.attn_l, DeployConvAttention)
        assert isinstance(block.mlp_l.conv1, PreNormConv2d)
    bns = [n for n, m in deployed.named_modules() if isinstance(m, _BatchNorm)]
    # left: DAPPM (each BN -> ReLU -> conv) and the head's bn1 (-> ReLU)
    assert all(n.startswith('backbone.spp.') for n in bns[:-1])
    assert bns[-1] == 'decode_head.bn1' and len(bns) == 12
    names = {type(m).__name__ for m in deployed.modules()}
    assert not names & {'DropPath', 'Dropout', 'AuxSCTHead',
                        'VitGuidanceHead'}
    assert all(not p.requires_grad for p in deployed.parameters())
    w = deployed.backbone.layer1[0].conv1.weight
    assert w.is_contiguous(memory_format=torch.channels_last)


def test_deploy_walk_uses_each_modules_own_form():
    """The contract a new block follows: ``switch_to_deploy(fold_prenorm)``
    returns the module to use at inference; the walk reaches children
    before parents and leaves other modules alone."""
    calls = []

    class Block(nn.Module):

        def __init__(self, name, *children):
            super().__init__()
            self.name, self.body = name, nn.Sequential(*children)

        def switch_to_deploy(self, fold_prenorm=True):
            calls.append((self.name, fold_prenorm))
            return nn.Identity() if self.name == 'inner' else self

    model = nn.Sequential(nn.Conv2d(1, 1, 1), Block('outer', Block('inner')))
    assert deploy_modules(model, fold_prenorm=False) is model
    assert calls == [('inner', False), ('outer', False)]
    assert isinstance(model[1].body[0], nn.Identity)
    assert isinstance(model[0], nn.Conv2d)


def test_mmseg_predict_path_unchanged():
    eager = eager_model('S')
    deployed = switch_to_deploy(copy.deepcopy(eager))
    x = torch.randn(2, 3, 72, 104, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = eager.predict(x)
        b = deployed.predict(x)
    for sa, sb in zip(a, b):
        assert rel_err(sb.seg_logits.data, sa.seg_logits.data) < TOL
        assert (sa.pred_sem_seg.data == sb.pred_sem_seg.data).float().mean(
        ) > 0.999


def test_backbone_alone_and_misuse():
    eager = eager_model('S')
    bb = switch_to_deploy(copy.deepcopy(eager.backbone))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(bb(x), eager.backbone(x)):
            assert rel_err(a, b) < TOL
    deployed = switch_to_deploy(copy.deepcopy(eager))
    assert deployed.switch_to_deploy() is deployed  # idempotent
    with pytest.raises(ValueError, match='already deployed'):
        switch_to_deploy(deployed, channels_last=False)
    with pytest.raises(TypeError, match='SCTNet'):
        switch_to_deploy(nn.Sequential(nn.Conv2d(3, 3, 1)))


def test_deploy_tool_and_checkpoint_roundtrip(tmp_path, capsys):
    src = str(tmp_path / 'official.pth')
    write_official_checkpoint(src, 'S', seed=7, with_teacher=False)
    out = str(tmp_path / 'deploy.pth')
    tool = load_tool('deploy.py')
    err = tool.main([src, out, '--config', CITY_CONFIG['S']])
    assert err < TOL
    assert 'BatchNorm layers: 36 -> 12' in capsys.readouterr().out
    eager = load_inference_model(CITY_CONFIG['S'], src)
    deployed = load_inference_model(CITY_CONFIG['S'], out)
    assert is_deployed(deployed) and not is_deployed(eager)
    x = torch.randn(1, 3, 83, 149)
    with torch.no_grad():
        assert rel_err(SegmentorWithResize(deployed)(x),
                       SegmentorWithResize(eager)(x)) < TOL
    for args, says in (
        ([src, out], 'exists'),
        ([out, str(tmp_path / 'again.pth')], 'already a deploy'),
    ):
        with pytest.raises(SystemExit):
            tool.main(args + ['--config', CITY_CONFIG['S']])
        assert says in capsys.readouterr().err
    with pytest.raises(SystemExit):  # S into B
        tool.main([src, str(tmp_path / 'b.pth'), '--config',
                   CITY_CONFIG['B']])
    assert 'differ in shape' in capsys.readouterr().err
    assert not (tmp_path / 'b.pth').exists()
