"""FLOPs (FlopCounterMode, 2 x MACs) against the official figures."""
import json

import pytest
import torch
import torch.nn as nn
from helpers.tools import load_tool

from mmseg_sctnet.deploy import build_inference_model, switch_to_deploy
from mmseg_sctnet.benchmark.flops import count_flops, inference_params
from mmseg_sctnet.models.layers import ConvolutionalAttention

CITY = 'configs/sctnet/cityscapes/'
# shared/reference/SCTNET.md section 1 (measured on the official code)
PUBLISHED = [
    (CITY + 'sctnet-s_seg50_8x2_160k_cityscapes.py', (512, 1024), 16.0),
    (CITY + 'sctnet-s_seg75_8x2_160k_cityscapes.py', (768, 1536), 36.0),
    ('configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py', (512, 512), 8.1),
    (CITY + 'sctnet-b_seg50_8x2_160k_cityscapes.py', (512, 1024), 59.8),
    (CITY + 'sctnet-b_seg75_8x2_160k_cityscapes.py', (768, 1536), 134.5),
    (CITY + 'sctnet-b_seg100_8x2_160k_cityscapes.py', (1024, 2048), 239.0),
    ('configs/sctnet/ADE20K/sctnet-b_8x4_160k_ade.py', (512, 512), 30.2),
    ('configs/sctnet/COCO-Stuff-10K/sctnet_b_4x4_160k.py', (640, 640), 47.2),
]
_MODELS = {}


def _model(config):
    if config not in _MODELS:
        _MODELS[config] = build_inference_model(config, init_weights=False)
    return _MODELS[config]


@pytest.mark.parametrize('config,shape,gflops', PUBLISHED,
                         ids=[f'{c.split("/")[-1][:-3]}-{s[0]}x{s[1]}'
                              for c, s, _ in PUBLISHED])
def test_gflops_equal_published(config, shape, gflops):
    res = count_flops(_model(config), shape)
    assert round(res['gflops'], 1) == gflops
    # only convolutions in this network
    assert set(res['by_operator']) == {'aten.convolution'}


def _hand_reference(model, shape):
    """Independent count: module convs via hooks + the attention formula."""
    total = []

    def hook(mod, inp, out):
        cin = mod.in_channels // mod.groups
        kh, kw = mod.kernel_size
        total.append(2 * out.numel() * cin * kh * kw)

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, nn.Conv2d)]

    def attn_hook(mod, inp, out):
        n, c, h, w = inp[0].shape
        # two branches x (key conv C->64 and value conv 64->C), 7 taps
        total.append(2 * 2 * 2 * n * mod.inter_channels * c * 7 * h * w)

    hooks += [m.register_forward_hook(attn_hook) for m in model.modules()
              if isinstance(m, ConvolutionalAttention)]
    with torch.no_grad():
        model._forward(torch.randn(1, 3, *shape))
    for h in hooks:
        h.remove()
    return sum(total)


def test_counter_matches_hand_count_at_odd_size():
    model = _model(PUBLISHED[0][0])
    shape = (97, 131)
    assert count_flops(model, shape)['flops'] == _hand_reference(model, shape)


def test_functional_attention_convs_are_counted():
    from torch.utils.flop_counter import FlopCounterMode
    attn = ConvolutionalAttention(32, 32).eval()
    h, w = 12, 20
    with FlopCounterMode(display=False) as fc:
        attn(torch.randn(1, 32, h, w))
    # 4 functional convolutions (no nn.Conv2d in this module)
    assert not any(isinstance(m, nn.Conv2d) for m in attn.modules())
    assert fc.get_total_flops() == 4 * 2 * 64 * 32 * 7 * h * w


def test_deployed_graph_has_the_same_flops():
    config, shape, _ = PUBLISHED[3]
    eager = build_inference_model(config, init_weights=False)
    before = count_flops(eager, shape)['flops']
    switch_to_deploy(eager)
    assert count_flops(eager, shape)['flops'] == before


@pytest.mark.parametrize('config,params', [
    (PUBLISHED[0][0], 4_654_643),
    (PUBLISHED[3][0], 17_437_779),
])
def test_inference_params_exclude_training_heads(config, params):
    model = _model(config)
    # the inference model is the deployed network: no auxiliary head
    assert not model.with_auxiliary_head
    assert sum(p.numel() for p in model.parameters()) == params
    assert inference_params(model) == params


def test_get_flops_cli(tmp_path, capsys):
    tool = load_tool('get_flops.py')
    out = tool.main([PUBLISHED[5][0], '--json', str(tmp_path / 'f.json')])
    text = capsys.readouterr().out
    assert 'GFLOPs:      239.0' in text and '1x3x1024x2048' in text
    assert round(out['gflops'], 1) == 239.0
    saved = json.loads((tmp_path / 'f.json').read_text())
    assert saved['params'] == 17_437_779 and saved['shape'] == [1024, 2048]
    # explicit shape, one number = square
    assert round(tool.main([PUBLISHED[0][0], '--shape', '512', '1024'])
                 ['gflops'], 1) == 16.0
    sq = tool.main([PUBLISHED[0][0], '--shape', '64'])
    assert sq['shape'] == [64, 64]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        tool.main([PUBLISHED[0][0], '--json', str(tmp_path / 'f.json')])
    assert 'f.json exists' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(['configs/nope.py'])
    assert 'config file not found' in capsys.readouterr().err
