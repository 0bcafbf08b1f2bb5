"""int8 export: calibration from the train split through the test
pipeline, float parts, accuracy against fp32 on generated data, and the
evaluation of the exported files with tools/test.py."""
import glob
import os
import os.path as osp

import cv2
import numpy as np
import onnx
import pytest
from mmengine.config import Config
from helpers.tools import load_tool
from helpers.deploy import SIZE, make_setup

from mmseg_sctnet.deploy import quantize as Q
from mmseg_sctnet.io.errors import CalibrationDataError
from mmseg_sctnet.deploy.onnx_runtime import ort_session

#: random weights: int8 vs fp32 mIoU on the generated val images (points)
INT8_MIOU_TOLERANCE = 2.0


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('int8'))
    s = make_setup(root)
    tool = load_tool('export_onnx.py')
    s['fp32'] = osp.join(root, 'fp32.onnx')
    s['int8'] = osp.join(root, 'int8.onnx')
    tool.main([s['config'], s['ckpt'], '--shape', *map(str, SIZE), '--out',
               s['fp32']])
    # what the int8 export reads for calibration and hands the quantizer
    calls = s['calls'] = dict(calibration=[], quantize=[])

    def calibration_inputs(*args, **kwargs):
        out = real_calibration(*args, **kwargs)
        calls['calibration'].append((args, kwargs, out))
        return out

    def quantize_int8(fp32_path, out, calib, **kwargs):
        calls['quantize'].append(calib)
        return real_quantize(fp32_path, out, calib, **kwargs)

    real_calibration, real_quantize = Q.calibration_inputs, Q.quantize_int8
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Q, 'calibration_inputs', calibration_inputs)
        mp.setattr(Q, 'quantize_int8', quantize_int8)
        s['int8_result'] = tool.main([
            s['config'], s['ckpt'], '--shape', *map(str, SIZE), '--int8',
            '--calib-num', '4', '--out', s['int8']
        ])
    return s


def test_int8_file_is_quantized_with_float_parts(setup):
    res = setup['int8_result']
    info = res['int8']
    assert res['precision'] == 'int8' and info['calib_images'] == 4
    assert info['agreement'] >= 0.85
    model = onnx.load(setup['int8'])
    ops = [n.op_type for n in model.graph.node]
    # per-channel int8 weights: one scale per output channel
    weights_dq = [
        n for n in model.graph.node if n.op_type == 'DequantizeLinear' and
        n.input[0].endswith(('weight_quantized', '_quantized'))
    ]
    assert ops.count('QuantizeLinear') > 20 and weights_dq
    inits = {i.name: i for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in weights_dq if n.input[1] in inits]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)
    # the parts kept in float compute in float: their outputs are not
    # re-quantized (they read the dequantized tensors of their inputs)
    produced_by = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    kept = [n for n in model.graph.node if n.op_type == 'Softmax']
    assert len(kept) == 6  # 2 per conv attention, 3 CFBlocks in SCTNet-S
    for n in kept:
        nxt = [c.op_type for c in consumers[n.output[0]]]
        assert nxt and 'QuantizeLinear' not in nxt, (n.name, nxt)
    final = produced_by[model.graph.output[0].name]
    assert final.op_type == 'Resize'  # float logits, float resize
    cls = produced_by[final.input[0]]
    assert cls.op_type == 'Conv' and '/conv_seg' in cls.name
    assert not any(c.op_type == 'QuantizeLinear' for c in consumers[
        cls.output[0]])
    assert 'BatchNormalization' in ops  # no int8 BN kernel: left float
    # int8 weights: the file is much smaller than the fp32 one
    assert osp.getsize(setup['int8']) < 0.45 * osp.getsize(setup['fp32'])


def test_float_nodes_selection(setup):
    model = onnx.load(setup['fp32'])
    names = set(Q.float_nodes(model, ['attention-norm']))
    by_name = {n.name: n for n in model.graph.node}
    ops = sorted({by_name[n].op_type for n in names})
    assert 'Softmax' in ops and 'ReduceSum' in ops and 'Div' in ops
    assert all('/attn' in n for n in names)
    assert not any('/key_' in n for n in names)
    cls = Q.float_nodes(model, ['classifier'])
    assert [by_name[n].op_type for n in cls] == ['Conv']
    assert Q.float_nodes(model, []) == []


def test_int8_miou_close_to_fp32_and_onnx_equals_pth(setup, tmp_path):
    """tools/test.py on the .pth, the fp32 and the int8 ONNX files."""
    tool = load_tool('test.py')
    res = {}
    for name in ('ckpt', 'fp32', 'int8'):
        out = str(tmp_path / f'{name}.json')
        res[name] = tool.main([
            setup['config'], setup[name], '--work-dir',
            str(tmp_path / name), '--metrics-json', out
        ])
        assert osp.isfile(out)
    pth, fp32, int8 = (res[k]['metrics']['mIoU']
                       for k in ('ckpt', 'fp32', 'int8'))
    assert abs(fp32 - pth) <= 0.01
    for c, v in res['ckpt']['per_class'].items():
        assert res['fp32']['per_class'][c] == v
    assert abs(int8 - fp32) <= INT8_MIOU_TOLERANCE
    assert len(res['int8']['per_class']) == 8


def _train_images_normalised(setup):
    """Every train image of the setup as the deployed model sees it,
    computed here: read, BGR -> RGB, the config's mean/std (the test
    pipeline's Resize keeps these 64x128 images as they are)."""
    cfg = Config.fromfile(setup['config'])
    pre = cfg.model.data_preprocessor
    mean = np.array(pre['mean'], np.float32).reshape(3, 1, 1)
    std = np.array(pre['std'], np.float32).reshape(3, 1, 1)
    out = {}
    for path in sorted(glob.glob(osp.join(setup['data'], 'leftImg8bit',
                                          'train', '*', '*.png'))):
        img = cv2.imread(path)[..., ::-1].transpose(2, 0, 1)
        out[path] = ((img.astype(np.float32) - mean) / std)[None]
    return out


def test_calibration_inputs_are_the_train_images(setup):
    """Each calibration input equals one train image through the
    preprocessing (not noise of the right range), all of them different."""
    ref = _train_images_normalised(setup)
    assert len(ref) == 4
    xs = Q.calibration_inputs(setup['config'], 4, SIZE,
                              log=lambda *a, **k: None)
    matched = set()
    for x in xs:
        errs = {p: np.abs(x - r).max() for p, r in ref.items()}
        best = min(errs, key=errs.get)
        assert errs[best] < 1e-4, errs
        matched.add(best)
    assert len(matched) == 4


def test_int8_export_calibrates_on_those_images(setup):
    """tools/export_onnx.py --int8 reads the calibration set once, with the
    config, count and export shape asked for, and quantizes with exactly
    what it read."""
    calls = setup['calls']
    assert len(calls['calibration']) == 1
    args, _, read = calls['calibration'][0]
    assert (args[0], args[1], tuple(args[2])) == (setup['config'], 4, SIZE)
    assert len(calls['quantize']) == 1 and calls['quantize'][0] is read


def test_calibration_reads_the_train_split_through_the_test_pipeline(setup):
    xs = Q.calibration_inputs(setup['config'], 3, (32, 96))
    assert len(xs) == 3
    for x in xs:
        assert x.shape == (1, 3, 32, 96) and x.dtype == np.float32
        # normalised by the data preprocessor (ImageNet mean/std), not 0-255
        assert -3.0 < x.min() and x.max() < 3.0 and x.std() > 0.1
    # asking for more than the split holds uses all of it
    assert len(Q.calibration_inputs(setup['config'], 50, SIZE,
                                    log=lambda *a, **k: None)) == 4


def test_missing_or_empty_calibration_set_is_refused(setup, tmp_path):
    tool = load_tool('export_onnx.py')
    cfg = str(tmp_path / 'cfg.py')
    missing = str(tmp_path / 'nowhere') + '/'
    with open(setup['config']) as f:
        text = f.read().replace(setup['data'], missing)
    with open(cfg, 'w') as f:
        f.write(text)
    with pytest.raises(CalibrationDataError, match='no calibration data'):
        Q.calibration_inputs(cfg, 4, SIZE)
    out = str(tmp_path / 'x.onnx')
    with pytest.raises(SystemExit) as e:
        tool.main([cfg, setup['ckpt'], '--shape', '64', '128', '--int8',
                   '--out', out])
    assert e.value.code == 1 and not osp.exists(out)
    # the folder exists but holds no image
    os.makedirs(osp.join(missing, 'leftImg8bit', 'train'))
    with pytest.raises(CalibrationDataError, match='0 images'):
        Q.calibration_inputs(cfg, 4, SIZE)


def test_int8_session_runs_any_batch(setup):
    sess = ort_session(setup['int8'])
    x = np.random.RandomState(0).randn(1, 3, *SIZE).astype(np.float32)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert out.shape == (1, 8, *SIZE) and np.isfinite(out).all()


def test_compare_accuracy_side_by_side(setup, tmp_path):
    """speed/compare_accuracy.py: every backend scored by IoUMetric on the
    test split (the exports of the fixture are reused, not redone)."""
    import json
    import shutil

    from test_speed import load_speed
    out = tmp_path / 'acc'
    out.mkdir()
    stem = f'model_{SIZE[0]}x{SIZE[1]}'
    shutil.copy(setup['fp32'], out / f'{stem}_fp32.onnx')
    shutil.copy(setup['int8'], out / f'{stem}_int8.onnx')
    res = load_speed('compare_accuracy').main([
        setup['config'], setup['ckpt'], '--out-dir', str(out), '--dtypes',
        'bf16'
    ])
    rows = res['backends']
    assert {'pth', 'deploy', 'ort-fp32', 'ort-int8'} <= set(rows)
    for name in ('deploy', 'ort-fp32'):
        assert abs(rows[name]['mIoU'] - rows['pth']['mIoU']) <= 0.01
        assert rows[name]['agreement_with_pth'] > 0.999
    assert abs(rows['ort-int8']['delta_mIoU']) <= INT8_MIOU_TOLERANCE
    assert len(rows['pth']['per_class']) == 8
    assert ('bf16' in rows) != ('bf16' in res['skipped'])
    saved = json.loads((out / 'accuracy.json').read_text())
    assert saved['backends']['ort-int8']['mIoU'] == rows['ort-int8']['mIoU']
    table = (out / 'accuracy.md').read_text()
    assert '| road |' in table and 'ort-int8' in table


def test_tta_with_a_static_onnx_file_is_refused(setup, tmp_path, capsys):
    """``tools/test.py MODEL.onnx --tta`` with a static-shape file: refused
    before anything runs (every scale would be fitted back to its one
    size)."""
    work = tmp_path / 'static'
    with pytest.raises(SystemExit) as e:
        load_tool('test.py').main([setup['config'], setup['fp32'], '--tta',
                                   '--work-dir', str(work)])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'error: --tta with' in err and '--dynamic' in err
    assert not work.exists()


def test_tta_with_a_dynamic_onnx_file_equals_the_pth(setup, tmp_path):
    """A --dynamic export gives the .pth's multi-scale + flip mIoU. (No
    capsys here: MMEngine's logger would keep its closed stream.)"""
    dyn = str(tmp_path / 'dynamic.onnx')
    load_tool('export_onnx.py').main([
        setup['config'], setup['ckpt'], '--shape', *map(str, SIZE),
        '--dynamic', '--out', dyn
    ])
    tool = load_tool('test.py')
    res = {
        name: tool.main([setup['config'], path, '--tta', '--work-dir',
                         str(tmp_path / name)])['metrics']
        for name, path in (('pth', setup['ckpt']), ('onnx', dyn))
    }
    assert abs(res['onnx']['mIoU'] - res['pth']['mIoU']) <= 0.01, res
