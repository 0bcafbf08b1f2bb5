"""ONNX export of the deployed student, run in onnxruntime."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.tools import load_tool
from helpers.models import CITY_CONFIG, write_official_checkpoint

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


@pytest.fixture(scope='module')
def static_onnx(ckpt_s, tmp_path_factory):
    """SCTNet-S (19 classes) exported at a static 64x128."""
    out = str(tmp_path_factory.mktemp('onnx_static') / 's.onnx')
    tool = load_tool('export_onnx.py')
    res = tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '64', '128',
                     '--out', out])
    return out, res


def test_static_export_matches_eager(ckpt_s, static_onnx, capsys):
    out, res = static_onnx
    assert res['checks'][0][1] < 1e-4
    assert 'trtexec --onnx=' in res['trtexec'] and '--fp16' in res['trtexec']
    assert res['precision'] == 'fp32' and res['size_mb'] > 1
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
    before = open(out, 'rb').read()
    tool = load_tool('export_onnx.py')
    with pytest.raises(SystemExit):
        tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '64', '128', '--out',
                   out])
    assert 'exists' in capsys.readouterr().err
    assert open(out, 'rb').read() == before


def test_static_export_folds_the_prenorm_bias_maps(ckpt_s, static_onnx,
                                                   tmp_path):
    """The pre-norm folds' border corrections: no ScatterND (slow in
    onnxruntime); their bias maps are constants that onnxruntime folds."""
    from mmseg_sctnet.deploy import switch_to_deploy
    from mmseg_sctnet.models.layers.fold import PreNormConv2d
    out, _ = static_onnx
    deployed = switch_to_deploy(load_inference_model(CITY_CONFIG['S'], ckpt_s))
    n_fold = sum(isinstance(m, PreNormConv2d) for m in deployed.modules())
    assert n_fold > 0
    assert not any(m.general_path for m in deployed.modules()
                   if isinstance(m, PreNormConv2d))   # torch: border path
    graph = onnx.load(out).graph
    assert not any(n.op_type == 'ScatterND' for n in graph.node)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(tmp_path / 'opt.onnx')
    ort.InferenceSession(out, so, providers=['CPUExecutionProvider'])
    n_conv = sum(n.op_type == 'Conv' for n in graph.node)
    n_opt = sum(n.op_type == 'Conv'
                for n in onnx.load(str(tmp_path / 'opt.onnx')).graph.node)
    assert n_opt == n_conv - n_fold   # one constant bias-map conv per fold


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


def test_bad_inputs(ckpt_s, tmp_path, capsys):
    tool = load_tool('export_onnx.py')
    cases = [
        ([CITY_CONFIG['S'], str(tmp_path / 'none.pth')], 'none.pth'),
        ([CITY_CONFIG['B'], ckpt_s], 's.pth'),  # SCTNet-S file, -B config
        ([CITY_CONFIG['S'], ckpt_s, '--int8', '--fp16'], '--fp16'),
        ([CITY_CONFIG['S'], ckpt_s, '--int8', '--float-parts', 'nope'],
         'nope'),
    ]
    for args, named in cases:
        with pytest.raises(SystemExit) as e:
            tool.main(args + ['--shape', '64', '64', '--out',
                              str(tmp_path / 'x.onnx')])
        err = capsys.readouterr().err
        assert e.value.code == 1 and err.startswith('error: '), err
        assert named in err, err
    assert not (tmp_path / 'x.onnx').exists()
    with pytest.raises(SystemExit):
        tool.main([CITY_CONFIG['S'], ckpt_s, '--shape', '16', '64'])


def test_onnx_file_checked_against_the_config(static_onnx, tmp_path):
    """tools/test.py's model for a .onnx: class count, file type, file."""
    from mmengine.config import Config

    from mmseg_sctnet.io.errors import OnnxModelError
    from mmseg_sctnet.deploy.ort_segmentor import onnx_model_config
    demo = 'configs/demo/sctnet-s_demo_cityscapes.py'  # 8 classes
    with pytest.raises(OnnxModelError, match='predicts 19 classes but .* '
                       'has 8'):
        onnx_model_config(Config.fromfile(demo), static_onnx[0])
    bad = tmp_path / 'model.onnx'
    bad.write_bytes(b'PK\x03\x04 a zip, not a protobuf' * 50)
    with pytest.raises(OnnxModelError, match='is not an ONNX model'):
        onnx_model_config(Config.fromfile(demo), str(bad))
    with pytest.raises(OnnxModelError, match='not found'):
        onnx_model_config(Config.fromfile(demo), str(tmp_path / 'no.onnx'))
    cfg = onnx_model_config(Config.fromfile(CITY_CONFIG['S']),
                            static_onnx[0])
    assert cfg.model.type == 'ORTSegmentor' and cfg.load_from is None
    assert cfg.model.num_classes == 19


def test_static_shape_file_serves_other_sizes(ckpt_s, static_onnx):
    """A 64x128 static file on 96x160 and 64x128 inputs: fitted (keep-ratio
    resize + pad), run, mapped back, as the eager model on the same
    fitted input."""
    from mmseg.registry import MODELS

    from mmseg_sctnet.deploy.onnx_runtime import fit_to_shape, unfit_logits
    seg = MODELS.build(
        dict(type='ORTSegmentor', onnx_file=static_onnx[0], num_classes=19,
             data_preprocessor=dict(type='SegDataPreProcessor')))
    eager = SegmentorWithResize(load_inference_model(CITY_CONFIG['S'],
                                                     ckpt_s))
    g = torch.Generator().manual_seed(3)
    for size in [(96, 160), (64, 128), (40, 200)]:
        x = torch.randn(1, 3, *size, generator=g)
        got = seg._forward(x)
        assert tuple(got.shape) == (1, 19, *size)
        fitted, valid = fit_to_shape(x, (64, 128))
        assert tuple(fitted.shape[2:]) == (64, 128)
        assert valid[0] <= 64 and valid[1] <= 128
        assert valid[0] == 64 or valid[1] == 128  # keep-ratio fit
        with torch.no_grad():
            ref = unfit_logits(eager(fitted), valid, (64, 128), size)
        assert _rel(got.numpy(), ref.numpy()) < 1e-4, size
    preds = seg.predict(torch.randn(2, 3, 64, 128, generator=g))
    assert len(preds) == 2 and preds[0].pred_sem_seg.shape == (64, 128)


def test_profile_onnx_kernel_time_per_op(static_onnx, tmp_path, capsys):
    """speed/profile_onnx.py: onnxruntime's profiler per op type, warm-up
    runs left out; the ONNX file is left as it was."""
    import json
    from test_speed import load_speed
    out, _ = static_onnx
    before = open(out, 'rb').read()
    tool = load_speed('profile_onnx')
    res = tool.main([out, '--threads', '1', '--runs', '3', '--warmup', '1',
                     '--json', str(tmp_path / 'p.json'), '--trace',
                     str(tmp_path / 'trace.json')])
    assert res['shape'] == [1, 3, 64, 128] and res['runs'] == 3
    ops = res['ops']
    assert any(op in ops for op in ('Conv', 'FusedConv'))
    assert abs(sum(r['share'] for r in ops.values()) - 1) < 1e-6
    assert abs(sum(r['ms'] for r in ops.values()) - res['kernel_ms']) < 1e-6
    assert 0 < res['kernel_ms'] and 0 < res['run_ms']
    # nodes per run: the graph's node count is the same in every run
    assert all(r['nodes'] >= 1 for r in ops.values())
    saved = json.loads((tmp_path / 'p.json').read_text())
    assert saved['ops'].keys() == ops.keys() and saved['cpu']
    trace = json.loads((tmp_path / 'trace.json').read_text())
    runs = [e for e in trace if e.get('name') == 'model_run']
    assert len(runs) == 4   # 1 warm-up + 3 timed, only 3 counted
    assert open(out, 'rb').read() == before
    assert '| op type |' in capsys.readouterr().out
    # an existing --json is refused before profiling
    with pytest.raises(SystemExit):
        tool.main([out, '--json', str(tmp_path / 'p.json')])
    assert 'exists' in capsys.readouterr().err


def test_profile_onnx_bad_input(static_onnx, tmp_path, capsys):
    from test_speed import load_speed
    tool = load_speed('profile_onnx')
    out, _ = static_onnx
    dyn = str(tmp_path / 'dyn.onnx')
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8), dyn,
                      dynamo=False, input_names=['input'],
                      dynamic_axes={'input': {2: 'h', 3: 'w'}})
    cases = [([str(tmp_path / 'missing.onnx')], 'not found'),
             ([dyn], 'dynamic input size; give --shape'),
             ([out, '--shape', '32', '32'], 'static input size 64x128'),
             ([out, '--runs', '0'], '--runs must be >= 1')]
    for argv, msg in cases:
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        assert e.value.code != 0
        err = capsys.readouterr().err
        assert err.startswith('error:') and msg in err, (argv, err)
    res = tool.main([dyn, '--shape', '16', '24', '--runs', '1'])
    assert res['shape'] == [1, 3, 16, 24]
