"""ImageNet-pretrained backbone loading through init_cfg."""
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from model_helpers import CITY_CONFIG, randomize_state


def _backbone(checkpoint):
    return MODELS.build(
        dict(
            type='SCTNet',
            base_channels=32,
            spp_channels=64,
            init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))


@pytest.mark.parametrize('layout', ['bare', 'state_dict', 'prefixed'])
def test_pretrained_backbone_loads_every_tensor(tmp_path, layout):
    src = _backbone(None).state_dict()
    weights = randomize_state(src, seed=4)
    if layout == 'bare':  # what the official SCT-*_Pretrain.pth hold
        obj = dict(weights, **{'head.fc.weight': torch.zeros(1000, 256)})
    elif layout == 'state_dict':
        obj = dict(state_dict=weights, meta=dict(epoch=300))
    else:  # a whole segmentor checkpoint
        obj = dict(state_dict={'backbone.' + k: v for k, v in weights.items()})
    path = str(tmp_path / 'SCT-S_Pretrain.pth')
    torch.save(obj, path)
    model = _backbone(path)
    model.init_weights()
    own = model.state_dict()
    assert all(torch.equal(own[k], weights[k]) for k in weights)


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    path = str(tmp_path / 'SCT-S_Pretrain.pth')
    model = _backbone(path)
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    msg = str(err.value)
    assert path in msg
    assert 'SCT-S_Pretrain.pth' in msg and 'init_cfg=None' in msg


def test_unrelated_file_is_refused(tmp_path):
    path = str(tmp_path / 'resnet.pth')
    torch.save({'fc.weight': torch.zeros(10, 10)}, path)
    with pytest.raises(ValueError, match='no tensor that matches'):
        _backbone(path).init_weights()


def test_segmentor_init_weights_uses_the_config_path(tmp_path):
    """Through the segmentor (what the Runner calls before iteration 1)."""
    path = str(tmp_path / 'SCT-B_Pretrain.pth')
    weights = randomize_state(
        MODELS.build(dict(type='SCTNet')).state_dict(), seed=6)
    torch.save(weights, path)
    cfg = Config.fromfile(CITY_CONFIG['B'])
    cfg.model.backbone.init_cfg.checkpoint = path
    cfg.model.use_siam = False
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert torch.equal(model.backbone.layer5.attn_l.kv, weights['layer5.attn_l.kv'])
