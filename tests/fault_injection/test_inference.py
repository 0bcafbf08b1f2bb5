"""tools/inference.py against bad inputs (docs/reliability.md, table).

Each row runs the tool as a subprocess and checks the contract of the
harness: exit status, one ``error:`` line naming the file or value (or,
for a folder with bad images, one line per skipped image and the rest
written), no traceback, every user file byte-identical. Most refusals
happen before the model is built. The table runs in forks of one
pre-imported process (``fault_fork``); the folder case runs as a plain
subprocess (``fault``) and the interrupted run as a real process that gets
SIGINT.

ONNX rows use tiny generated graphs (one convolution, the interface of
an exported SCTNet: ``input [N, 3, H, W] -> logits [N, C, H, W]``); the
bf16 refusal fakes a CPU without native bf16 through
``SCTNET_CPU_FLAGS`` (``mmseg_sctnet.deploy.dtype``).
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import onnx
import pytest
import torch
from harness import ROOT, snapshot
from onnx import TensorProto, helper, numpy_helper

TOOL = 'tools/inference.py'
CONFIG = 'configs/custom/sctnet-s_custom.py'  # 8 classes, SCTNet-S


def tiny_onnx(path, classes):
    """image ``[N, 3, H, W]`` -> logits ``[N, classes, H, W]`` (one 3x3
    convolution, dynamic shape)."""
    w = numpy_helper.from_array(
        np.random.RandomState(0).randn(classes, 3, 3, 3).astype(np.float32),
        'w')
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'w'], ['logits'],
                          pads=[1, 1, 1, 1])], 'tiny',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                       ['N', 3, 'H', 'W'])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT,
                                       ['N', classes, 'H', 'W'])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 17)]), str(path))
    return str(path)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A small SCTNet-S checkpoint (random weights), a damaged copy of it,
    images, a folder with good and unreadable images, a fake video, and
    ONNX files: a good one, one of another class count, a truncated one,
    a text file and a checkpoint named ``.onnx``."""
    import mmseg_sctnet  # noqa: F401
    from mmengine.config import Config
    from mmseg.registry import MODELS
    d = tmp_path_factory.mktemp('fault_inference')
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    cfg.model.update(train_cfg=None, backbone=dict(cfg.model.backbone,
                                                   init_cfg=None))
    state = MODELS.build(cfg.model).state_dict()
    ckpt = str(d / 'model.pth')
    torch.save(dict(state_dict=state, meta=dict()), ckpt)
    data = open(ckpt, 'rb').read()
    truncated = d / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    (d / 'notes.pth').write_text('these are my notes, not a checkpoint\n')
    five = {
        k: (v[:5] if k.startswith('decode_head.conv_seg') else v)
        for k, v in state.items()
    }
    torch.save(dict(state_dict=five), str(d / 'five_classes.pth'))
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (32, 48, 3), np.uint8)
    cv2.imwrite(str(d / 'img.png'), img)
    folder = d / 'folder'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a_good.png'), img)
    (folder / 'b_empty.png').write_bytes(b'')
    (folder / 'c_broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really')
    cv2.imwrite(str(folder / 'd_good.jpg'), img)
    (d / 'clip.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'\x00' * 64)
    (d / 'a_file').write_text('x')
    tiny_onnx(d / 'good.onnx', 8)
    tiny_onnx(d / 'five.onnx', 5)
    data = open(d / 'good.onnx', 'rb').read()
    (d / 'truncated.onnx').write_bytes(data[:len(data) // 2])
    (d / 'notes.onnx').write_text('these are my notes, not a model\n')
    (d / 'checkpoint.onnx').write_bytes(open(ckpt, 'rb').read())
    return {k: str(d / k) for k in os.listdir(d)}, str(d)


def _out(tmp_path):
    return str(tmp_path / 'out')


# (name, argv builder, what the error line must name). Refusals that need
# no subprocess (a missing input, an unsupported type, --out inside the
# input folder, --opacity, checkpoints that are empty or hold a list) are
# tested in process by tests/test_inference.py and tests/test_apis.py.
CASES = [
    ('--out is the input image', lambda f, o: [f['img.png'], CONFIG,
                                               f['model.pth'], '--out',
                                               f['img.png']],
     ['--out', 'img.png']),
    ('--out cannot be created', lambda f, o: [f['img.png'], CONFIG,
                                              f['model.pth'], '--out',
                                              osp.join(f['a_file'], 'out')],
     ['a_file', 'is a file']),
    ('config and checkpoint swapped', lambda f, o: [
        f['img.png'], f['model.pth'], CONFIG, '--out', o
    ], ['model.pth', 'not a config']),
    ('truncated checkpoint', lambda f, o: [f['img.png'], CONFIG,
                                           f['truncated.pth'], '--out', o],
     ['truncated.pth', 'truncated']),
    ('text file as checkpoint', lambda f, o: [f['img.png'], CONFIG,
                                              f['notes.pth'], '--out', o],
     ['notes.pth']),
    ('checkpoint of another class count', lambda f, o: [
        f['img.png'], CONFIG, f['five_classes.pth'], '--out', o
    ], ['5 classes', '8']),
    ('misspelled --cfg-options key', lambda f, o: [
        f['img.png'], CONFIG, f['model.pth'], '--out', o, '--cfg-options',
        'test_pipline.1.scale=[64,32]'
    ], ["'test_pipline'", "'test_pipeline'"]),
    ('model argument that does not exist', lambda f, o: [
        f['img.png'], CONFIG, f['model.pth'], '--out', o, '--cfg-options',
        '+model.backbone.base_channel=16'
    ], ['base_channel', 'SCTNet', 'model.backbone', "'base_channels'"]),
    ('unreadable video', lambda f, o: [f['clip.mp4'], CONFIG, f['model.pth'],
                                       '--out', o], ['clip.mp4']),
    # an ONNX file is checked against the config before any image is read
    ('ONNX file of another class count', lambda f, o: [
        f['img.png'], CONFIG, f['five.onnx'], '--out', o
    ], ['five.onnx', 'predicts 5 classes', 'has 8', 'use the config']),
    ('truncated ONNX file', lambda f, o: [
        f['img.png'], CONFIG, f['truncated.onnx'], '--out', o
    ], ['truncated.onnx', 'not an ONNX model', 'cut short',
        'tools/export_onnx.py']),
    ('text file named .onnx', lambda f, o: [
        f['folder'], CONFIG, f['notes.onnx'], '--out', o
    ], ['notes.onnx', 'not an ONNX model']),
    # never handed to the PyTorch checkpoint reader
    ('PyTorch checkpoint named .onnx', lambda f, o: [
        f['img.png'], CONFIG, f['checkpoint.onnx'], '--out', o
    ], ['checkpoint.onnx', 'not an ONNX model', 'renamed .pth']),
    ('missing ONNX file', lambda f, o: [
        f['img.png'], CONFIG, osp.join(f['folder'], 'nope.onnx'), '--out', o
    ], ['nope.onnx', 'not found']),
    ('--dtype with an ONNX file', lambda f, o: [
        f['img.png'], CONFIG, f['good.onnx'], '--out', o, '--dtype', 'bf16'
    ], ['--dtype bf16', 'good.onnx', 'precision it was exported in']),
    ('--deploy with an ONNX file', lambda f, o: [
        f['img.png'], CONFIG, f['good.onnx'], '--out', o, '--deploy'
    ], ['--deploy', 'good.onnx', 'leave out --deploy']),
    ('--dtype fp16 on the CPU', lambda f, o: [
        f['img.png'], CONFIG, f['model.pth'], '--out', o, '--device', 'cpu',
        '--dtype', 'fp16'
    ], ['--dtype fp16', 'CUDA']),
]


@pytest.mark.parametrize('name,argv,names', CASES, ids=[c[0] for c in CASES])
def test_refused(fault_fork, files, tmp_path, name, argv, names):
    f, root = files
    out = _out(tmp_path)
    fault_fork.run(TOOL, argv(f, out), keep=[root], names=names)
    assert not osp.exists(out) or not os.listdir(out), 'wrote outputs'


def test_bf16_refused_on_a_cpu_without_native_bf16(fault_fork, files,
                                                    tmp_path):
    """No silent fallback: a CPU whose flags have neither avx512_bf16 nor
    amx_bf16 (an AVX2 machine, faked with SCTNET_CPU_FLAGS) refuses
    --dtype bf16 before the model is built; fp32 is not run instead."""
    f, root = files
    out = _out(tmp_path)
    fault_fork.run(
        TOOL, [f['img.png'], CONFIG, f['model.pth'], '--out', out,
               '--device', 'cpu', '--dtype', 'bf16'],
        keep=[root],
        names=['--dtype bf16', 'AVX512-BF16', 'SCTNET_CPU_FLAGS',
               '--dtype fp32'],
        env=dict(SCTNET_CPU_FLAGS='fpu sse4_2 avx avx2 fma'))
    assert not osp.exists(out)


def test_onnx_folder_with_unreadable_images(fault_fork, files, tmp_path):
    """An ONNX file skips and names bad images as a .pth does: the good
    ones written, exit status 1."""
    f, root = files
    out = tmp_path / 'out'
    res = fault_fork.run(
        TOOL, [f['folder'], CONFIG, f['good.onnx'], '--out',
               str(out)],
        keep=[root],
        names=['b_empty.png', 'empty file', 'c_broken.jpg', 'onnxruntime'],
        mode='batch',
        rc=1)
    assert '2 of 4' in res.output
    assert sorted(os.listdir(out / 'labels')) == ['a_good.png', 'd_good.png']
    assert sorted(os.listdir(out / 'overlay')) == ['a_good.png', 'd_good.png']
    label = cv2.imread(str(out / 'labels' / 'a_good.png'),
                       cv2.IMREAD_UNCHANGED)
    assert label.shape == (32, 48)


def test_existing_outputs_and_output_equal_to_input(fault_fork, files,
                                                    tmp_path):
    """An output file that exists needs --force; an output that *is* an
    input (an image inside --out named like an output) is refused even
    with --force."""
    f, root = files
    out = tmp_path / 'out'
    (out / 'labels').mkdir(parents=True)
    mine = out / 'labels' / 'img.png'
    mine.write_bytes(open(f['img.png'], 'rb').read())
    fault_fork.run(
        TOOL, [f['img.png'], CONFIG, f['model.pth'], '--out',
               str(out)],
        keep=[root, str(out)],
        names=['already exists'])
    fault_fork.run(
        TOOL, [str(mine), CONFIG, f['model.pth'], '--out',
               str(out), '--force'],
        keep=[root, str(out)],
        names=['would overwrite the input', str(mine)])


@pytest.mark.skipif(
    hasattr(os, 'geteuid') and os.geteuid() == 0,
    reason='root can write to read-only folders')
def test_unwritable_out(fault_fork, files, tmp_path):
    f, root = files
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o555)
    try:
        fault_fork.run(
            TOOL, [f['img.png'], CONFIG, f['model.pth'], '--out',
                   str(ro / 'out')],
            keep=[root],
            names=['not writable'])
    finally:
        ro.chmod(0o755)


def test_folder_with_unreadable_images(fault, files, tmp_path):
    """A zero-byte PNG and a damaged JPEG among good images: each is named
    with its reason, the good ones are written, exit status 1."""
    f, root = files
    out = tmp_path / 'out'
    res = fault.run(
        TOOL, [f['folder'], CONFIG, f['model.pth'], '--out',
               str(out)],
        keep=[root],
        names=['b_empty.png', 'empty file', 'c_broken.jpg'],
        mode='batch',
        rc=1)
    skipped = [ln for ln in res.output.splitlines()
               if ln.startswith('skipped /')]
    assert len(skipped) == 2, res.output
    assert '2 of 4' in res.output
    assert sorted(os.listdir(out / 'labels')) == ['a_good.png', 'd_good.png']
    assert sorted(os.listdir(out / 'overlay')) == ['a_good.png', 'd_good.png']


def test_interrupted_run(files, tmp_path):
    """Ctrl-C during a folder run: one error line saying how far it got,
    no traceback, no half-written or temporary file, inputs intact."""
    f, root = files
    src = tmp_path / 'many'
    src.mkdir()
    img = cv2.imread(f['img.png'])
    for i in range(40):
        cv2.imwrite(str(src / f'{i:03d}.png'), img)
    before = snapshot([root, str(src)])
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    p = subprocess.Popen(
        [sys.executable, TOOL, str(src), CONFIG, f['model.pth'], '--out',
         str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.time() + 240
    while not (out / 'labels').is_dir() and time.time() < deadline:
        if p.poll() is not None:
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    output = stdout + stderr
    assert p.returncode == 1, output[-3000:]
    assert 'Traceback' not in output
    errors = [ln for ln in output.splitlines() if ln.startswith('error:')]
    assert len(errors) == 1 and 'interrupted after' in errors[0], output
    written = os.listdir(out / 'labels')
    assert all(w.endswith('.png') and not w.startswith('.') for w in written)
    for w in written:
        assert cv2.imread(str(out / 'labels' / w)) is not None
    assert snapshot([root, str(src)]) == before
