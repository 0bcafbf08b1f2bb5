"""ONNX export of the deployed student, run in onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from _helpers_train import load_tool
from model_helpers import CITY_CONFIG, write_official_checkpoint

from mmseg_sctnet.deploy import SegmentorWithResize, load_inference_model


@pytest.fixture(scope='module')
def ckpt_s(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 's.pth')
    write_official_checkpoint(path, 'S', seed=11, with_teacher=False)
    return path


def _ort(path, x):
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_static_export_matches_eager(ckpt_s, tmp_path, capsys):
    out = str(tmp_path / 's.onnx')
    tool = load_tool('export_onnx.py')
    res = tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '64', '128',
                     '--out', out])
    text = capsys.readouterr().out
    assert 'OK' in text and 'trtexec --onnx=' in text and '--fp16' in text
    assert res['checks'][0][1] < 1e-4
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert 'BatchNormalization' in ops  # DAPPM / head bn1 (ReLU follows)
    n_bn = sum(n.op_type == 'BatchNormalization' for n in model.graph.node)
    assert n_bn == 12
    # independent check: our own onnxruntime run against the eager model
    eager = SegmentorWithResize(load_inference_model(CITY_CONFIG['S'], ckpt_s))
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        ref = eager(x).numpy()
    got = _ort(out, x)
    assert got.shape == (1, 19, 64, 128)
    assert _rel(got, ref) < 1e-4
    with pytest.raises(SystemExit, match='exists'):
        tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '64', '128', '--out',
                   out])


def test_dynamic_export_any_size(ckpt_s, tmp_path):
    out = str(tmp_path / 'dyn.onnx')
    tool = load_tool('export_onnx.py')
    res = tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '96', '160',
                     '--dynamic', '--no-resize', '--out', out])
    assert all(err < 1e-4 for _, err in res['checks'])
    eager = load_inference_model(CITY_CONFIG['S'], ckpt_s)
    # 64x64: the 1/32 map is 2x2, smaller than the attention's padding
    for shape in [(64, 64), (75, 101), (2, 3, 96, 96)]:
        x = torch.randn(*shape) if len(shape) == 4 else torch.randn(
            1, 3, *shape)
        with torch.no_grad():
            ref = eager._forward(x).numpy()
        got = _ort(out, x)
        assert got.shape == ref.shape  # 1/8 logits (--no-resize)
        assert _rel(got, ref) < 1e-4, shape


def test_bad_inputs(ckpt_s, tmp_path):
    tool = load_tool('export_onnx.py')
    with pytest.raises(SystemExit, match='not found'):
        tool.main([CITY_CONFIG['S'], str(tmp_path / 'none.pth'), '--shape',
                   '64', '64'])
    with pytest.raises(SystemExit, match='cannot load'):
        tool.main([CITY_CONFIG['B'], ckpt_s, '--shape', '64', '64', '--out',
                   str(tmp_path / 'x.onnx')])
    with pytest.raises(SystemExit):
        tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '16', '64'])
