"""ImageNet-pretrained backbone loading through init_cfg."""
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from helpers.models import CITY_CONFIG, randomize_state


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
    with pytest.raises(ValueError, match='no tensor of the file fits'):
        _backbone(path).init_weights()


def _partial_file(tmp_path, drop='layer5.', reshape='spp.'):
    """SCTNet-S weights without the layer5 tensors and one spp tensor of
    another shape: loading it would leave those initialised at random."""
    weights = randomize_state(_backbone(None).state_dict(), seed=5)
    kept = {k: v for k, v in weights.items() if not k.startswith(drop)}
    bad = next(k for k in kept if k.startswith(reshape) and kept[k].ndim)
    kept[bad] = torch.zeros(7, *kept[bad].shape[1:])
    kept['head.fc.weight'] = torch.zeros(1000, 256)  # ImageNet classifier
    path = str(tmp_path / 'SCT-S_Pretrain.pth')
    torch.save(kept, path)
    n_dropped = sum(
        1 for k in weights
        if k.startswith(drop) and not k.endswith('num_batches_tracked'))
    return path, weights, bad, n_dropped


def test_strict_refuses_a_file_that_leaves_tensors_uninitialised(tmp_path):
    """init_cfg.strict=True (what a converted pretraining file is checked
    with): every missing / reshaped backbone tensor is named; the
    classifier the backbone has no place for is not a reason to refuse."""
    from mmseg_sctnet.io.errors import CheckpointMismatchError
    path, _, bad, n_dropped = _partial_file(tmp_path)
    model = MODELS.build(
        dict(
            type='SCTNet',
            base_channels=32,
            spp_channels=64,
            init_cfg=dict(type='Pretrained', checkpoint=path, strict=True)))
    with pytest.raises(CheckpointMismatchError) as e:
        model.init_weights()
    msg = str(e.value)
    assert path in msg and f'missing tensors: {n_dropped} of' in msg
    assert "'layer5." in msg and f'{bad}: file (7,' in msg
    assert 'head.fc' not in msg.split('The file holds')[0]
    assert 'SCTNet-S' in msg and 'SCT-S_Pretrain.pth' in msg
    # a complete file passes the strict check
    full = str(tmp_path / 'full.pth')
    weights = randomize_state(_backbone(None).state_dict(), seed=8)
    torch.save(dict(weights, **{'head.fc.bias': torch.zeros(1000)}), full)
    report = _backbone(None).load_pretrained(full, strict=True)
    assert report['missing'] == [] and report['unexpected'] == ['head.fc.bias']


def test_lenient_default_loads_what_fits_and_logs_the_rest(tmp_path):
    """The official SCT-*_Pretrain.pth content is not published: by default
    every fitting tensor is loaded and what was not is logged."""
    from mmengine.logging import MMLogger
    path, weights, bad, n_dropped = _partial_file(tmp_path)
    model = _backbone(path)
    before = {k: v.clone() for k, v in _backbone(None).state_dict().items()}
    logger = MMLogger.get_current_instance()
    seen = []
    handler = type('H', (__import__('logging').Handler, ), {
        'emit': lambda self, rec: seen.append(rec.getMessage())
    })()
    logger.addHandler(handler)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    own = model.state_dict()
    assert torch.equal(own['layer1.0.conv1.weight'],
                       weights['layer1.0.conv1.weight'])
    assert not torch.equal(own['layer5.attn_l.kv'],
                           weights['layer5.attn_l.kv'])
    assert own[bad].shape == before[bad].shape
    line = next(m for m in seen if m.startswith('Loaded '))
    assert f'{n_dropped} tensors of the model not in the file' in line
    assert 'layer5.' in line and bad in line and 'head.*' in line


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
    assert torch.equal(model.backbone.layer5.attn_l.kv,
                       weights['layer5.attn_l.kv'])
