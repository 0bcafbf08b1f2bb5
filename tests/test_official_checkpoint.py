"""Official release checkpoints load unchanged and compute the same logits."""
import pytest
import torch
from helpers.models import CITY_CONFIG
from helpers.reference_sctnet import sctnet_logits

from mmseg.apis import init_model


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize('size', ['S', 'B'])
def test_init_model_loads_official_checkpoint(size, request):
    path, state = request.getfixturevalue(f'official_ckpt_{size.lower()}')
    model = init_model(CITY_CONFIG[size], path, device='cpu')
    own = model.state_dict()
    student = [k for k in state if k.startswith(('backbone.', 'decode_head.'))]
    assert sorted(own) == sorted(student)  # every deployed tensor, no other
    assert all(torch.equal(own[k], state[k]) for k in student)
    # inference model: no auxiliary head, no teacher, no SIAM projections
    assert not any(k.startswith('auxiliary_head') for k in own)
    assert model.dataset_meta['classes'][0] == 'road'


@pytest.mark.parametrize('size', ['S', 'B'])
@pytest.mark.parametrize('hw', [(512, 1024), (200, 328)])
def test_logits_equal_reference_implementation(size, hw, request):
    path, state = request.getfixturevalue(f'official_ckpt_{size.lower()}')
    model = init_model(CITY_CONFIG[size], path, device='cpu')
    torch.manual_seed(3)
    img = torch.randn(1, 3, *hw)
    with torch.no_grad():
        ours = model(img, mode='tensor')
    ref = sctnet_logits(state, img)
    assert ours.shape == ref.shape == (1, 19, -(-hw[0] // 8), -(-hw[1] // 8))
    # the logits vary over the image (not a constant dominated by biases)
    assert ref.std() > 0.05 * ref.abs().max()
    assert _rel_err(ours, ref) < 1e-4


def test_reference_detects_a_wrong_weight(official_ckpt_s):
    """The parity check is sensitive: one scaled conv changes the logits."""
    path, state = official_ckpt_s
    model = init_model(CITY_CONFIG['S'], path, device='cpu')
    img = torch.randn(1, 3, 64, 128)
    bad = dict(state)
    key = 'backbone.layer3_2.mlp_l.conv2.weight'
    bad[key] = state[key] * 1.5
    with torch.no_grad():
        ours = model(img, mode='tensor')
    assert _rel_err(ours, sctnet_logits(bad, img)) > 1e-3


def test_predict_upsamples_to_input_size(official_ckpt_s):
    from mmseg.apis import inference_model
    import numpy as np
    path, _ = official_ckpt_s
    model = init_model(CITY_CONFIG['S'], path, device='cpu')
    img = (np.random.RandomState(0).rand(120, 250, 3) * 255).astype('uint8')
    result = inference_model(model, img)
    assert result.pred_sem_seg.data.shape == (1, 120, 250)
    assert int(result.pred_sem_seg.data.max()) < 19


def test_checkpoint_of_the_other_model_size_is_refused(official_ckpt_b):
    """An SCTNet-B file with the SCTNet-S config stops with one message
    instead of loading partly."""
    from mmseg_sctnet.io.errors import CheckpointMismatchError
    path, _ = official_ckpt_b
    with pytest.raises(CheckpointMismatchError, match='another model size'):
        init_model(CITY_CONFIG['S'], path, device='cpu')


@pytest.mark.parametrize('layout', ['bare', 'no_meta'])
def test_init_model_accepts_checkpoints_without_meta(official_ckpt_s, layout,
                                                     tmp_path):
    """``torch.save(model.state_dict())`` files and ``{'state_dict': ...}``
    without ``meta`` (mmseg's init_model alone raises KeyError 'meta')."""
    _, state = official_ckpt_s
    student = {k: v for k, v in state.items()
               if k.startswith(('backbone.', 'decode_head.'))}
    path = str(tmp_path / 'plain.pth')
    torch.save(student if layout == 'bare' else {'state_dict': student}, path)
    model = init_model(CITY_CONFIG['S'], path, device='cpu')
    assert torch.equal(model.state_dict()['decode_head.conv_seg.weight'],
                       student['decode_head.conv_seg.weight'])
