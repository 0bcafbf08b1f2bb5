"""tools/inference.py on an image, a folder and a video.

Label PNGs are compared with ``mmseg.apis.init_model`` +
``inference_model`` on the same input; overlays with an independent numpy
blend of the image and the checkpoint's palette. The tool's ``main`` runs
in this process (its errors are ``error:`` lines on stderr and exit status
1) except for one subprocess run of the command line.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from helpers.models import ROOT, build_cfg_model
from helpers.tools import load_tool

from mmseg_sctnet.datasets import CLASSES_STREET, render_scene

CONFIG = 'configs/custom/sctnet-s_custom.py'
TOOL = osp.join(ROOT, 'tools', 'inference.py')
# the checkpoint's own class order and colours (not the config's)
CKPT_CLASSES = tuple(reversed(CLASSES_STREET))
CKPT_PALETTE = [[(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 200) % 256]
                for i in range(len(CKPT_CLASSES))]


tool = load_tool('inference')


def refused(argv, capsys):
    """Run the tool, expect a refusal; its one ``error:`` line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith('error: ')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def tool_env():
    """The subprocess imports this checkout's package."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """A random SCTNet-S (custom config, 8 classes) saved twice: with
    ``meta.dataset_meta`` and as a bare state dict."""
    d = tmp_path_factory.mktemp('inference_ckpt')
    torch.manual_seed(0)
    model = build_cfg_model(CONFIG, train=False)
    model.init_weights()
    state = model.state_dict()
    with_meta = str(d / 'with_meta.pth')
    torch.save(
        dict(
            state_dict=state,
            meta=dict(
                dataset_meta=dict(
                    classes=CKPT_CLASSES, palette=CKPT_PALETTE))), with_meta)
    bare = str(d / 'bare.pth')
    torch.save(state, bare)
    return dict(with_meta=with_meta, bare=bare)


def reference_labels(ckpt, inputs):
    """init_model + inference_model, one input at a time (a fresh model
    per call: inference_model rewrites the pipeline for arrays). The
    weights are loaded with mmengine's load_checkpoint: init_model itself
    fails on a checkpoint without ``meta``."""
    from mmengine.runner import load_checkpoint
    from mmseg.apis import inference_model, init_model
    model = init_model(CONFIG, None, device='cpu')
    load_checkpoint(model, ckpt, map_location='cpu')
    return [
        inference_model(model, x).pred_sem_seg.data[0].numpy()
        for x in inputs
    ]


def expected_overlay(img_bgr, label, palette, alpha):
    """Image blended with the palette colour of every pixel's class (RGB)."""
    rgb = img_bgr[..., ::-1].astype(np.float64)
    colour = np.asarray(palette, np.float64)[label]
    return rgb * (1 - alpha) + colour * alpha


def check_overlay(path, img_bgr, label, palette, alpha):
    out = cv2.imread(path)
    h, w = img_bgr.shape[:2]
    assert out.shape[0] > h, 'no legend strip below the overlay'
    assert out.shape[1] >= w
    got = out[:h, :w, ::-1].astype(np.float64)
    want = expected_overlay(img_bgr, label, palette, alpha)
    assert np.abs(got - want).max() <= 1.0  # uint8 truncation
    legend = out[h:]
    # every class present has its swatch colour in the legend strip
    for k in np.unique(label):
        colour = np.asarray(palette[k])[::-1]  # BGR
        assert (legend == colour).all(-1).any(), CKPT_CLASSES[k]


def md5(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


def write_scene(path, seed, size):
    img, _ = render_scene(seed, size)
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)
    return img


def test_single_image_cli(ckpts, tmp_path):
    img_path = str(tmp_path / 'street.jpg')
    write_scene(img_path, 3, (70, 100))  # not a multiple of 32
    before = md5(img_path)
    out = tmp_path / 'out'
    r = subprocess.run([
        sys.executable, TOOL, img_path, CONFIG, ckpts['with_meta'], '--out',
        str(out), '--device', 'cpu', '--opacity', '0.6'
    ],
                       cwd=ROOT,
                       env=tool_env(),
                       capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '1/1' in r.stdout  # progress bar
    assert sorted(os.listdir(out)) == ['labels', 'overlay']
    label = cv2.imread(
        str(out / 'labels' / 'street.png'), cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint8 and label.shape == (70, 100)
    ref, = reference_labels(ckpts['with_meta'], [img_path])
    np.testing.assert_array_equal(label, ref)
    assert len(np.unique(label)) >= 2  # a real prediction, not a constant
    img = cv2.imread(img_path)
    check_overlay(
        str(out / 'overlay' / 'street.png'), img, label, CKPT_PALETTE, 0.6)
    assert md5(img_path) == before

    # a second run does not overwrite without --force
    r = subprocess.run([
        sys.executable, TOOL, img_path, CONFIG, ckpts['with_meta'], '--out',
        str(out)
    ],
                       cwd=ROOT,
                       env=tool_env(),
                       capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert 'already exists' in r.stderr and '--force' in r.stderr


def test_folder_batched_palette_from_config(ckpts, tmp_path, capsys):
    src = tmp_path / 'images'
    imgs = {
        'a.jpg': write_scene(str(src / 'a.jpg'), 1, (64, 96)),
        'a.png': write_scene(str(src / 'a.png'), 2, (64, 96)),
        'b.png': write_scene(str(src / 'b.png'), 4, (64, 96)),
        'sub/c.jpg': write_scene(str(src / 'sub' / 'c.jpg'), 5, (80, 60)),
    }
    (src / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    assert tool.main([
        str(src), CONFIG, ckpts['bare'], '--out',
        str(out), '--batch-size', '3', '--device', 'cpu'
    ]) == 0
    names = {
        'a.jpg': 'a_jpg.png',
        'a.png': 'a_png.png',
        'b.png': 'b.png',
        'sub/c.jpg': osp.join('sub', 'c.png')
    }
    for d in ('labels', 'overlay'):
        found = sorted(
            osp.relpath(osp.join(dp, f), out / d)
            for dp, _, fs in os.walk(out / d) for f in fs)
        assert found == sorted(names.values())
    refs = reference_labels(ckpts['bare'],
                            [str(src / k) for k in sorted(names)])
    # a bare state dict has no meta: classes and palette of the config
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    for k, ref in zip(sorted(names), refs):
        label = cv2.imread(
            str(out / 'labels' / names[k]), cv2.IMREAD_UNCHANGED)
        assert label.shape == imgs[k].shape[:2]
        # three same-size images ran as one batch: argmax may flip only
        # where two logits tie to float precision
        assert (label == ref).mean() > 0.999, k
        check_overlay(
            str(out / 'overlay' / names[k]), cv2.imread(str(src / k)), label,
            cfg.palette, 0.5)
    assert not (src / 'labels').exists()

    # outputs inside the input folder are refused
    assert 'inside the input folder' in refused(
        [str(src), CONFIG, ckpts['bare'], '--out',
         str(src / 'o')], capsys)


def test_video(ckpts, tmp_path):
    path = str(tmp_path / 'clip.avi')
    h, w, n = 64, 96, 5
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 8,
                             (w, h))
    assert writer.isOpened()
    for i in range(n):
        writer.write(render_scene(10 + i, (h, w))[0])
    writer.release()
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == n
    out = tmp_path / 'out'
    assert tool.main([
        path, CONFIG, ckpts['with_meta'], '--out',
        str(out), '--frame-labels', '--batch-size', '2'
    ]) == 0
    videos = [f for f in os.listdir(out) if f.startswith('clip_overlay.')]
    assert len(videos) == 1
    cap = cv2.VideoCapture(str(out / videos[0]))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(8, abs=0.01)
    sizes = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        sizes.append(f.shape)
    assert len(sizes) == n
    assert len(set(sizes)) == 1
    fh, fw, _ = sizes[0]
    assert fh > h and fw >= w  # frame + legend strip
    labels = sorted(os.listdir(out / 'clip_labels'))
    assert labels == [f'{i:06d}.png' for i in range(n)]
    refs = reference_labels(ckpts['with_meta'], frames)
    for name, ref in zip(labels, refs):
        label = cv2.imread(str(out / 'clip_labels' / name),
                           cv2.IMREAD_UNCHANGED)
        assert label.shape == (h, w) and label.dtype == np.uint8
        assert (label == ref).mean() > 0.999


def test_clear_errors(ckpts, tmp_path, capsys):
    img = str(tmp_path / 'x.png')
    write_scene(img, 0, (32, 32))
    cases = [
        ([str(tmp_path / 'missing.png')], 'input not found'),
        ([str(tmp_path / 'clip.gif')], None),
        ([img, 'configs/custom/nope.py'], 'config file not found'),
        ([img, CONFIG, str(tmp_path / 'no.pth')], 'checkpoint file not found'),
        ([str(tmp_path / 'empty')], 'no images'),
    ]
    (tmp_path / 'clip.gif').write_bytes(b'GIF89a')
    os.makedirs(tmp_path / 'empty')
    for args, msg in cases:
        full = args + [CONFIG, ckpts['bare']][len(args) - 1:]
        line = refused(full + ['--out', str(tmp_path / 'o')], capsys)
        assert line.startswith('error: ')
        assert (msg or 'unsupported file type') in line.lower()
    assert '--opacity' in refused(
        [img, CONFIG, ckpts['bare'], '--out', 'o', '--opacity', '0'], capsys)
    # a checkpoint for another number of classes
    other = str(tmp_path / 'other.pth')
    state = torch.load(ckpts['bare'])
    state = {
        k: (v[:5] if k.startswith('decode_head.conv_seg') else v)
        for k, v in state.items()
    }
    torch.save(state, other)
    assert 'predicts 5 classes' in refused(
        [img, CONFIG, other, '--out', str(tmp_path / 'o')], capsys)
    # a teacher file (tools/pth_convert.py output) is not a segmentor
    teacher = str(tmp_path / 'teacher.pth')
    torch.save({'teacher_backbone.layers.0.0.projection.weight':
                torch.zeros(32, 3, 7, 7)}, teacher)
    assert "does not hold this config's network" in refused(
        [img, CONFIG, teacher, '--out', str(tmp_path / 'o')], capsys)


def test_deploy_mode(ckpts, tmp_path, capsys):
    img = str(tmp_path / 'x.png')
    write_scene(img, 7, (64, 96))
    assert tool.main(
        [img, CONFIG, ckpts['bare'], '--out',
         str(tmp_path / 'o'), '--deploy']) == 0
    label = cv2.imread(
        str(tmp_path / 'o' / 'labels' / 'x.png'), cv2.IMREAD_UNCHANGED)
    ref, = reference_labels(ckpts['bare'], [img])
    assert label.shape == ref.shape
    assert (label == ref).mean() > 0.999
    # a deploy checkpoint (folded weights) is read as such
    from mmseg_sctnet.deploy import (load_inference_model,
                                     save_deploy_checkpoint)
    model = load_inference_model(CONFIG, ckpts['bare'], deploy=True)
    path = str(tmp_path / 'deployed.pth')
    save_deploy_checkpoint(model, path)
    assert tool.main([img, CONFIG, path, '--out', str(tmp_path / 'o2')]) == 0
    label = cv2.imread(
        str(tmp_path / 'o2' / 'labels' / 'x.png'), cv2.IMREAD_UNCHANGED)
    assert (label == ref).mean() > 0.999


def test_never_overwrites_inputs(ckpts, tmp_path, capsys):
    """An image named like an output inside --out is never written over."""
    out = tmp_path / 'out'
    img = str(out / 'labels' / 'x.png')
    write_scene(img, 0, (32, 48))
    before = md5(img)
    assert 'would overwrite the input' in refused(
        [img, CONFIG, ckpts['bare'], '--out',
         str(out), '--force'], capsys)
    assert md5(img) == before
    shutil.rmtree(out)


def test_degenerate_images_and_single_frame_video(ckpts, tmp_path):
    """1x1 and 2-pixel-wide images, extreme aspect ratios (4000x8, 8x4000),
    grayscale, RGBA and 16-bit PNGs are segmented at their own size, with
    the labels of mmseg's init_model + inference_model on the same file; a
    video of one frame gives a one-frame overlay video."""
    src = tmp_path / 'odd'
    src.mkdir()
    rng = np.random.RandomState(0)
    scene = render_scene(1, (64, 96))[0]
    images = {
        'one_pixel.png': scene[:1, :1],
        'wide.png': cv2.resize(scene, (4000, 8)),
        'tall.png': cv2.resize(scene, (2, 4000)),
        'gray.png': cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY),
        'rgba.png': np.dstack([scene, rng.randint(0, 256, scene.shape[:2],
                                                  np.uint8)]),
        'deep.png': scene.astype(np.uint16) * 257,
    }
    for name, img in images.items():
        assert cv2.imwrite(str(src / name), img)
    out = tmp_path / 'out'
    assert tool.main([str(src), CONFIG, ckpts['bare'], '--out', str(out),
                      '--batch-size', '2']) == 0
    names = sorted(images)
    refs = reference_labels(ckpts['bare'], [str(src / n) for n in names])
    for name, ref in zip(names, refs):
        label = cv2.imread(str(out / 'labels' / name), cv2.IMREAD_UNCHANGED)
        assert label.shape == images[name].shape[:2], name
        np.testing.assert_array_equal(label, ref, err_msg=name)
        overlay = cv2.imread(str(out / 'overlay' / name))
        assert overlay.shape[0] > label.shape[0], name  # legend below

    video = str(tmp_path / 'one.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (96, 64))
    writer.write(scene)
    writer.release()
    assert tool.main([video, CONFIG, ckpts['bare'], '--out',
                      str(tmp_path / 'v')]) == 0
    written = [f for f in os.listdir(tmp_path / 'v')
               if f.startswith('one_overlay.')]
    cap = cv2.VideoCapture(str(tmp_path / 'v' / written[0]))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 1
