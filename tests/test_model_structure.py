"""Structure of the deployed network: names, shapes, counts, strides, grads."""
import math

import pytest
import torch
from mmseg.registry import MODELS
from helpers.models import CITY_CONFIG, build_cfg_model, reference_shapes

SIZES = {'S': (32, 64), 'B': (64, 128)}
EXPECTED_PARAMS = {'S': 4_654_643, 'B': 17_437_779}


def _student(size, num_classes=19):
    c, spp = SIZES[size]
    backbone = MODELS.build(
        dict(type='SCTNet', base_channels=c, spp_channels=spp))
    head = MODELS.build(
        dict(
            type='SCTHead',
            in_channels=4 * c,
            channels=4 * c,
            in_index=0,
            dropout_ratio=0.,
            num_classes=num_classes))
    return backbone, head


@pytest.mark.parametrize('size', ['S', 'B'])
def test_parameter_count_matches_official(size):
    backbone, head = _student(size)
    n = sum(p.numel() for m in (backbone, head) for p in m.parameters())
    assert n == EXPECTED_PARAMS[size]


@pytest.mark.parametrize('size', ['S', 'B'])
def test_state_dict_keys_and_shapes_equal_reference(size):
    model = build_cfg_model(CITY_CONFIG[size])
    ours = {
        k: tuple(v.shape)
        for k, v in model.state_dict().items() if '.teacher_' not in k
    }
    ref = reference_shapes(size)
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    bad = {k: (ours[k], ref[k]) for k in ref if ours[k] != ref[k]}
    assert bad == {}


@pytest.mark.parametrize('size', ['S', 'B'])
@pytest.mark.parametrize('hw', [(512, 1024), (200, 328)])
def test_output_shapes_and_strides(size, hw):
    backbone, head = _student(size)
    backbone.eval()
    head.eval()
    c = SIZES[size][0]
    h, w = hw
    with torch.no_grad():
        x_out, x2, x3, x4 = backbone(torch.randn(1, 3, h, w))
        logits = head((x_out, x2, x3, x4))

    def down(n, times):
        for _ in range(times):
            n = math.ceil(n / 2)
        return n

    assert x_out.shape == (1, 4 * c, down(h, 3), down(w, 3))
    assert x2.shape == (1, 2 * c, down(h, 3), down(w, 3))
    assert x3.shape == (1, 4 * c, down(h, 4), down(w, 4))
    assert x4.shape == (1, 8 * c, down(h, 5), down(w, 5))
    assert logits.shape == (1, 19, down(h, 3), down(w, 3))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize('size', ['S', 'B'])
def test_gradients_reach_every_student_parameter(size):
    """Every parameter of backbone, decode head and auxiliary head gets a
    finite, non-zero gradient from the CE losses (SIAM off)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model = build_cfg_model(CITY_CONFIG[size], **{'model.use_siam': False})
    model.init_weights()
    # eval(): BN uses running statistics, so even the biases of convs that
    # feed a BN get a gradient; the graph is the same as in training.
    model.eval()
    torch.manual_seed(0)
    img = torch.randn(2, 3, 96, 160)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 96, 160)))
        s.set_metainfo(dict(img_shape=(96, 160), ori_shape=(96, 160)))
        samples.append(s)
    losses = model.loss(img, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    student = [(n, p) for n, p in model.named_parameters()
               if n.startswith(('backbone.', 'decode_head.', 'auxiliary_head.0.'))]
    expected = [
        k for k in reference_shapes(size)
        if not k.startswith('auxiliary_head.1.') and not k.endswith(
            ('running_mean', 'running_var', 'num_batches_tracked'))
    ]
    assert sorted(n for n, _ in student) == sorted(expected)
    no_grad = [n for n, p in student if p.grad is None]
    assert no_grad == []
    zero = [n for n, p in student if not (p.grad.abs().sum() > 0)]
    assert zero == []
    assert all(torch.isfinite(p.grad).all() for _, p in student)


def test_attention_kernel_and_conv_init():
    backbone, _ = _student('B')
    backbone.init_weights()
    kv = backbone.layer4.attn_l.kv
    assert 0.0007 < kv.std().item() < 0.0013
    # truncation bounds are absolute (+-2, as mmcv's trunc_normal_init)
    assert kv.abs().max().item() < 0.007
    w = backbone.layer3[0].conv2.weight  # fan_out = 256 * 9
    assert abs(w.std().item() - math.sqrt(2 / (256 * 9))) < 0.1 * math.sqrt(
        2 / (256 * 9))
    assert torch.count_nonzero(backbone.layer3[0].conv2.bias) == 0


def test_conv_attention_rejects_bad_widths():
    from mmseg_sctnet.models.layers import ConvolutionalAttention
    with pytest.raises(ValueError, match='multiple of num_heads'):
        ConvolutionalAttention(60, 60, inter_channels=64, num_heads=8)
    with pytest.raises(ValueError, match='must equal'):
        ConvolutionalAttention(64, 128)
