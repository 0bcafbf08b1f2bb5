"""tools/export_onnx.py and tools/test.py with an ONNX file, under bad
input (docs/reliability.md, "Bad input").

Every row: exit status 1, one ``error:`` line naming the file or value and
the fix, no traceback, every file the user had byte-identical, nothing
written where an output was refused.
"""
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

DEMO = 'configs/demo/sctnet-s_demo_cityscapes.py'  # 8 classes


def _tiny_onnx(path, classes):
    """image [1, 3, 64, 128] -> logits [1, classes, 64, 128] (one 1x1 conv)
    : the interface of an exported SCTNet, built without exporting one."""
    w = numpy_helper.from_array(
        np.random.RandomState(0).randn(classes, 3, 1, 1).astype(np.float32),
        'w')
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'w'], ['logits'])], 'tiny',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                       [1, 3, 64, 128])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT,
                                       [1, classes, 64, 128])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 17)]), path)
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('export_onnx')
    from mmseg_sctnet.deploy import build_inference_model
    model = build_inference_model(DEMO)
    ckpt = str(d / 'student.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    nodata = str(d / 'nodata.py')
    with open(nodata, 'w') as f:
        f.write(f'_base_ = [{osp.abspath(DEMO)!r}]\n'
                'train_dataloader = dict(dataset=dict('
                f"data_root={str(d / 'missing')!r}))\n")
    not_onnx = str(d / 'student.onnx')
    with open(not_onnx, 'wb') as f:
        f.write(open(ckpt, 'rb').read()[:4096])  # a .pth renamed
    existing = str(d / 'existing.onnx')
    _tiny_onnx(existing, 8)
    return dict(ckpt=ckpt, nodata=nodata, classes19=_tiny_onnx(
        str(d / 'cityscapes19.onnx'), 19), not_onnx=not_onnx,
        existing=existing, dir=str(d))


def test_export_missing_checkpoint(fault, files, tmp_path):
    # the plain runner (not forked): catches failures at import too
    missing = str(tmp_path / 'nope.pth')
    fault.run('tools/export_onnx.py', [DEMO, missing, '--shape', '64', '128',
                                       '--out', str(tmp_path / 'o.onnx')],
              names=['nope.pth'])
    assert not (tmp_path / 'o.onnx').exists()


def test_export_int8_without_calibration_data(fault_fork, files, tmp_path):
    out = str(tmp_path / 'o.onnx')
    fault_fork.run('tools/export_onnx.py', [
        files['nodata'], files['ckpt'], '--shape', '64', '128', '--int8',
        '--out', out
    ], keep=[files['ckpt'], files['nodata']],
        names=['no calibration data', 'missing'])
    assert not osp.exists(out)


def test_export_never_overwrites(fault_fork, files):
    fault_fork.run('tools/export_onnx.py', [
        DEMO, files['ckpt'], '--shape', '64', '128', '--out',
        files['existing']
    ], keep=[files['existing'], files['ckpt']],
        names=[files['existing'], 'exists'])


@pytest.mark.parametrize('which,named', [
    ('classes19', 'predicts 19 classes'),
    ('not_onnx', 'is not an ONNX model'),
    ('missing', 'not found'),
])
def test_test_tool_with_a_bad_onnx_file(fault_fork, files, which, named):
    path = files.get(which, osp.join(files['dir'], 'missing.onnx'))
    fault_fork.run('tools/test.py', [DEMO, path, '--work-dir',
                                     osp.join(files['dir'], 'w')],
                   keep=[files['dir']], names=[osp.basename(path), named])
