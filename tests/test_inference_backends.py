"""tools/inference.py with an ONNX file and with ``--dtype bf16``.

A tiny SCTNet-S (the demo config, 8 classes, random activation-keeping
weights: ``helpers.deploy.write_checkpoint``) is exported to ONNX with
``tools/export_onnx.py`` (dynamic and static shape); the tool runs the
``.pth``, the ONNX files and bf16 on the same generated folder (images of
three sizes, one in a sub-folder) and a 5-frame video, and the label maps
are compared pixel by pixel with the ``.pth`` run's. Refusals (bad ONNX
files, ``--dtype`` with ONNX, fp16 on CPU, bf16 on a CPU without it) are
rows of ``tests/fault_injection/test_inference.py``.
"""
import logging
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from helpers.tools import load_tool
from helpers.deploy import DEMO_CONFIG, write_checkpoint

from mmseg_sctnet.datasets import render_scene
from mmseg_sctnet.deploy import dtype as D

#: the demo config's test resize is (256, 128): exports at its size
EXPORT_HW = (128, 256)
#: image sizes of the folder; 64x128 and 48x96 resize to EXPORT_HW exactly
SIZES = {'a.png': (64, 128), 'b.jpg': (70, 100), 'sub/c.png': (48, 96)}
VIDEO_HW, VIDEO_FRAMES = (64, 128), 5
#: fp32 onnxruntime vs PyTorch: share of pixels whose class may differ
#: (argmax ties to float rounding); measured 0 of the 60,760 pixels of the
#: 3 images and 5 frames
ONNX_DISAGREE = 1e-3
#: bf16 autocast vs fp32: share of pixels with the same class (measured
#: 0.995-0.999 per image or frame on a Zen 4 CPU with avx512_bf16)
BF16_AGREE = 0.99

tool = load_tool('inference.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('inference_backends')
    ckpt = write_checkpoint(str(d / 'model.pth'), DEMO_CONFIG)
    export = load_tool('export_onnx.py')
    h, w = EXPORT_HW
    for name, extra in (('dynamic.onnx', ['--dynamic']),
                        ('static.onnx', [])):
        export.main([DEMO_CONFIG, ckpt, '--shape', str(h), str(w),
                     '--no-check', '--out', str(d / name)] + extra)
    folder = d / 'images'
    for i, (name, size) in enumerate(sorted(SIZES.items())):
        os.makedirs(osp.dirname(folder / name), exist_ok=True)
        assert cv2.imwrite(str(folder / name), render_scene(i, size)[0])
    video = str(d / 'clip.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 8,
                             VIDEO_HW[::-1])
    assert writer.isOpened()
    for i in range(VIDEO_FRAMES):
        writer.write(render_scene(10 + i, VIDEO_HW)[0])
    writer.release()
    s = dict(dir=d, pth=ckpt, folder=str(folder), video=video,
             dynamic=str(d / 'dynamic.onnx'), static=str(d / 'static.onnx'))
    s['ref'] = run(s, 'pth')
    return s


def run(s, model, *extra):
    """The tool on the folder and the video; the label maps by name."""
    out = s['dir'] / f'out_{model}{"_".join(extra)}'
    for src in (s['folder'], s['video']):
        assert tool.main([src, DEMO_CONFIG, s[model], '--out', str(out),
                          '--batch-size', '2', '--frame-labels',
                          *extra]) == 0
    labels = {}
    for sub in ('labels', 'clip_labels'):
        for dp, _, fs in os.walk(out / sub):
            for f in fs:
                path = osp.join(dp, f)
                labels[osp.relpath(path, out)] = cv2.imread(
                    path, cv2.IMREAD_UNCHANGED)
    overlays = sorted(os.listdir(out / 'overlay'))
    assert overlays == ['a.png', 'b.png', 'sub']
    assert [f for f in os.listdir(out) if f.startswith('clip_overlay.')]
    return labels


def agreement(got, ref):
    """Per-file share of equal pixels (shapes must match)."""
    assert sorted(got) == sorted(ref)
    assert len(ref) == len(SIZES) + VIDEO_FRAMES
    out = {}
    for k in ref:
        assert got[k].shape == ref[k].shape and got[k].dtype == np.uint8
        out[k] = float((got[k] == ref[k]).mean())
    return out


def test_reference_run_is_a_real_prediction(setup):
    ref = setup['ref']
    for name, (h, w) in SIZES.items():
        label = ref[osp.join('labels', osp.splitext(name)[0] + '.png')]
        assert label.shape == (h, w)
        assert len(np.unique(label)) >= 3  # not a constant map


def test_dynamic_onnx_equals_pth(setup, capsys):
    got = run(setup, 'dynamic')
    assert 'dynamic.onnx on cpu (onnxruntime): 8 classes' in (
        capsys.readouterr().out)
    agree = agreement(got, setup['ref'])
    print('onnxruntime fp32 vs .pth, share of equal pixels:', agree)
    assert min(agree.values()) >= 1 - ONNX_DISAGREE, agree


def test_static_onnx_fits_other_sizes(setup):
    """Images whose test-pipeline size is the export size give the .pth's
    labels; the others are fitted to it (keep-ratio resize + padding, as
    ORTSegmentor does for tools/test.py): same output size, a note."""
    from mmengine.logging import MMLogger
    notes = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        got = run(setup, 'static')
    finally:
        logger.removeHandler(handler)
    agree = agreement(got, setup['ref'])
    print('static onnxruntime vs .pth, share of equal pixels:', agree)
    fitted = osp.join('labels', 'b.png')  # 70x100 -> 256x183, not 256x128
    for k, v in agree.items():
        if k != fitted:
            assert v >= 1 - ONNX_DISAGREE, (k, agree)
    # another input size, another resize: close, not equal (measured 0.95)
    assert 0.8 < agree[fitted] < 1.0, agree
    # the note, on MMEngine's logger (the console): once per run
    told = [n for n in notes if 'has the static input size 128x256' in n]
    # b.jpg only: the video's 64x128 frames resize to the export size
    assert len(told) == 1, notes


@pytest.mark.skipif(D.cpu_bf16_feature() is None,
                    reason='this CPU has no native bf16 (avx512_bf16 / '
                    'amx_bf16): --dtype bf16 is refused, tested in '
                    'fault_injection/test_inference.py')
def test_bf16_agrees_with_fp32(setup):
    agree = agreement(run(setup, 'pth', '--dtype', 'bf16'), setup['ref'])
    print('bf16 autocast vs fp32, share of equal pixels:', agree)
    assert min(agree.values()) >= BF16_AGREE, agree
    # autocast did run in bf16: not bit-identical to fp32 everywhere
    assert min(agree.values()) < 1.0, agree
