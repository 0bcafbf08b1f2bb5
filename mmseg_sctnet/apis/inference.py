"""Inference on images, folders and videos: what ``tools/inference.py``
runs.

:func:`run_inference` builds the inferencer for the checkpoint
(:mod:`mmseg_sctnet.deploy.inferencer`: ``MMSegInferencer`` subclasses for
PyTorch, ONNX and low precision), walks the input,
checks every output path before the model is built, skips unreadable images
(naming each) and writes overlays with a legend and raw label maps.
"""
import os
import os.path as osp
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.utils import ProgressBar

from ..deploy.dtype import check_dtype
from ..deploy.inferencer import SCTNetInferencer, inferencer_for, onnx_device
from ..deploy.ort_segmentor import is_onnx_path
from ..io.checkpoint import read_checkpoint
from ..io.config import load_config
from ..io.errors import ConfigError, PathError, RunInterrupted
from ..io.files import check_output_folder, check_planned_outputs, write_png
from ..visualization import legend_cell_width

__all__ = [
    'run_inference', 'collect_inputs', 'read_image',
    'infer_images', 'infer_video', 'report_skipped',
    'InferenceReport', 'IMG_EXTS', 'VIDEO_EXTS'
]

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
            '.ppm', '.pgm')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
              '.mpeg', '.wmv')
#: legend rows of a video frame (every frame has the same size)
MAX_VIDEO_LEGEND_ROWS = 3


# ----------------------------------------------------------------------
# inputs and outputs
@dataclass
class InferenceReport:
    """What :func:`run_inference` did."""
    written: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    total: int = 0


def collect_inputs(path: str) -> Tuple[str, list]:
    """``('video', [path])`` or ``('images', [(path, out_name), ...])``.

    ``out_name`` is the ``.png`` name of the outputs relative to the output
    folder, sub-folders kept; two images that differ only by extension
    (``a.jpg``, ``a.png``) keep it in the name (``a_jpg.png``).
    """
    if not osp.exists(path):
        raise PathError(f'input not found: {path} (resolved to '
                        f'{osp.abspath(path)})')
    if osp.isfile(path):
        ext = osp.splitext(path)[1].lower()
        if ext in VIDEO_EXTS:
            return 'video', [path]
        if ext in IMG_EXTS:
            return 'images', [(path, osp.splitext(osp.basename(path))[0] +
                               '.png')]
        raise PathError(
            f'{path}: unsupported file type "{ext}"; give an image '
            f'({", ".join(IMG_EXTS)}), a video ({", ".join(VIDEO_EXTS)}) or '
            'a folder of images')
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for f in sorted(filenames):
            if osp.splitext(f)[1].lower() in IMG_EXTS:
                files.append(osp.relpath(osp.join(dirpath, f), path))
    if not files:
        raise PathError(
            f'no images ({", ".join(IMG_EXTS)}) found in folder {path}')
    stems = Counter(osp.splitext(f)[0] for f in files)
    items = []
    for f in files:
        stem, ext = osp.splitext(f)
        name = stem + ('_' + ext[1:] if stems[stem] > 1 else '') + '.png'
        items.append((osp.join(path, f), name))
    return 'images', items


def read_image(path: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(BGR uint8 image, None)`` or ``(None, why it cannot be read)``.

    Decoded as MMSegmentation's ``LoadImageFromFile`` does (OpenCV, colour):
    grayscale becomes 3 channels, an alpha channel is dropped, 16-bit
    images are scaled to 8 bits.
    """
    try:
        if os.path.getsize(path) == 0:
            return None, 'empty file (0 bytes)'
        img = mmcv.imread(path)
    except Exception as err:  # noqa: B902 (whatever the decoder raises)
        text = str(err).strip().splitlines()
        return None, (f'cannot be decoded ({type(err).__name__}'
                      f'{": " + text[-1] if text else ""})')
    if img is None or img.size == 0:
        return None, ('not an image OpenCV can decode (damaged, or not the '
                      'format its extension says)')
    return img, None


def _label_png(label: np.ndarray, num_classes: int) -> np.ndarray:
    return label.astype(np.uint8 if num_classes <= 256 else np.uint16)


def _image_outputs(out: str, items) -> List[Tuple[str, str]]:
    return [(osp.join(out, 'overlay', n), osp.join(out, 'labels', n))
            for _, n in items]


def _video_outputs(out: str, path: str) -> Tuple[str, str]:
    stem = osp.splitext(osp.basename(path))[0]
    return osp.join(out, stem + '_overlay'), osp.join(out, stem + '_labels')


def _check_video(path: str) -> None:
    cap = cv2.VideoCapture(path)
    try:
        ok = cap.isOpened() and cap.read()[0]
    finally:
        cap.release()
    if not ok:
        size = osp.getsize(path)
        raise PathError(
            f'video {path} cannot be read: OpenCV finds no frame in it '
            f'({size} bytes: ' + ('an empty file' if not size else
                                  'damaged, not a video, or a codec this '
                                  'OpenCV build lacks') +
            '). Check that it plays; re-encode it (e.g. ffmpeg -i IN '
            '-c:v libx264 OUT.mp4) or extract its frames into a folder.')


def _results(out, key):
    value = out[key]
    return value if isinstance(value, list) else [value]


def infer_images(inferencer: SCTNetInferencer,
                 items: Sequence[Tuple[str, str]],
                 out: str,
                 batch_size: int = 1,
                 opacity: float = 0.5,
                 report: Optional[InferenceReport] = None
                 ) -> InferenceReport:
    """Overlays and label maps of images; unreadable ones are skipped.

    Writes ``out/overlay/<name>`` and ``out/labels/<name>`` for every
    ``(path, name)`` of ``items``; an image that cannot be read is named
    with the reason, and the others are still processed.
    """
    report = report or InferenceReport(total=len(items))
    n_cls = len(inferencer.model.dataset_meta['classes'])
    outs = _image_outputs(out, items)
    bar = ProgressBar(len(items))
    i = 0
    while i < len(items):
        batch = []
        while i < len(items) and len(batch) < batch_size:
            img, why = read_image(items[i][0])
            if img is None:
                report.skipped.append((items[i][0], why))
                print(f'\nskipped {items[i][0]}: {why}', flush=True)
                bar.update()
            else:
                batch.append((i, img))
            i += 1
        if not batch:
            continue
        res = inferencer([img for _, img in batch],
                         batch_size=len(batch),
                         return_vis=True,
                         opacity=opacity)
        for (k, _), label, vis in zip(batch, _results(res, 'predictions'),
                                      _results(res, 'visualization')):
            overlay_path, label_path = outs[k]
            write_png(label_path, _label_png(label, n_cls))
            write_png(overlay_path, vis[..., ::-1])
            report.written.append(overlay_path)
            bar.update()
    done = len(report.written)
    print(f'\nwrote {done} overlay(s) to {osp.join(out, "overlay")} and '
          f'{done} label map(s) to {osp.join(out, "labels")}')
    return report


def _open_writer(base: str, fps: float, size: Tuple[int, int]):
    for ext, codec in (('.mp4', 'mp4v'), ('.avi', 'MJPG')):
        path = base + ext
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps,
                                 size)
        if writer.isOpened():
            return writer, path
        writer.release()
        if osp.exists(path):
            os.remove(path)
    raise PathError(f'OpenCV could not open a video writer for '
                    f'{base}.mp4/.avi (no mp4v or MJPG encoder)')


def infer_video(inferencer: SCTNetInferencer,
                path: str,
                out: str,
                batch_size: int = 1,
                opacity: float = 0.5,
                frame_labels: bool = False,
                report: Optional[InferenceReport] = None) -> InferenceReport:
    """``out/<name>_overlay.mp4`` (``.avi`` where OpenCV has no MP4
    encoder) at the input's frame rate, every frame with the same legend
    layout; with ``frame_labels`` also ``out/<name>_labels/<frame>.png``.
    Reads and writes frame by frame, as MMSegmentation's
    ``demo/video_demo.py``."""
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    base, label_dir = _video_outputs(out, path)
    os.makedirs(out, exist_ok=True)
    meta = inferencer.model.dataset_meta
    n_cls = len(meta['classes'])
    # one frame size for the whole video: cells fit every class name and
    # the strip has a fixed number of rows
    cell_w = legend_cell_width(meta['classes'])
    width = max(w, cell_w)
    rows = min(-(-n_cls // max(1, width // cell_w)), MAX_VIDEO_LEGEND_ROWS)
    legend = dict(width=width, cell_width=cell_w, rows=rows)
    writer, out_path = None, None
    bar = ProgressBar(n_frames)
    report = report or InferenceReport()
    report.total = n_frames
    try:
        while True:
            frames = []
            while len(frames) < batch_size:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                break
            res = inferencer(frames, batch_size=len(frames), return_vis=True,
                             opacity=opacity, legend=legend)
            for label, vis in zip(_results(res, 'predictions'),
                                  _results(res, 'visualization')):
                if writer is None:
                    writer, out_path = _open_writer(
                        base, fps, (vis.shape[1], vis.shape[0]))
                writer.write(np.ascontiguousarray(vis[..., ::-1]))
                if frame_labels:
                    write_png(
                        osp.join(label_dir, f'{len(report.written):06d}.png'),
                        _label_png(label, n_cls))
                report.written.append(out_path)
                bar.update()
    finally:
        if writer is not None:
            writer.release()
        cap.release()
    done = len(report.written)
    report.total = max(n_frames, done)
    if done == 0:
        raise PathError(f'no frame could be read from video {path}')
    print(f'\nwrote {done} frame(s) at {fps:g} fps to {out_path}' +
          (f' and their label maps to {label_dir}' if frame_labels else ''))
    if n_frames and done < n_frames:
        print(f'note: {path} announces {n_frames} frames; {done} could be '
              'decoded (the rest may be damaged).')
    return report


def _device(device: Optional[str]) -> str:
    if device is None:
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError(
            f'--device {device}: this PyTorch sees no CUDA GPU (torch '
            f'{torch.__version__}, CUDA {torch.version.cuda}); use --device '
            'cpu or install a CUDA build of PyTorch.')
    if device != 'cpu' and not device.startswith('cuda'):
        raise ConfigError(f'--device {device}: use cpu, cuda or cuda:N.')
    return device


def run_inference(input: str,
                  config: str,
                  checkpoint: str,
                  out: str,
                  device: Optional[str] = None,
                  deploy: bool = False,
                  opacity: float = 0.5,
                  batch_size: int = 1,
                  frame_labels: bool = False,
                  force: bool = False,
                  cfg_options: Optional[dict] = None,
                  dtype: Optional[str] = None,
                  inferencer_cls=None) -> InferenceReport:
    """Segment an image, a folder of images or a video into ``out``.

    Everything a user can get wrong is checked before the model is built:
    the options (``dtype`` against the device, combinations that mean
    nothing for an ONNX file), the input (exists, a known image/video
    type; a video that decodes), ``out`` (creatable, writable, not an
    input, not inside the input folder), the files it will write (never an
    input; existing ones only with ``force``), the config and
    ``cfg_options`` keys, then the model file (readable, then fitting the
    config). Returns what was written and skipped; unreadable images are
    skipped, not fatal.

    ``checkpoint`` is a PyTorch checkpoint (``.pth``, eager or deploy) or
    an ONNX file (a path ending in ``.onnx``, from
    ``tools/export_onnx.py``), which onnxruntime runs on the CPU and which
    never goes through the PyTorch checkpoint reader.
    ``dtype``: ``'fp32'`` (None), ``'bf16'`` or ``'fp16'``: the PyTorch
    model under ``torch.autocast``; refused where the device has no native
    support (no fallback) and with an ONNX file.
    ``inferencer_cls``: build this :class:`SCTNetInferencer` subclass
    instead of the one :func:`mmseg_sctnet.deploy.inferencer.
    inferencer_for` picks.
    """
    if not 0 < opacity <= 1:
        raise ConfigError(f'--opacity must be in (0, 1], got {opacity}')
    if batch_size < 1:
        raise ConfigError(f'--batch-size must be >= 1, got {batch_size}')
    onnx = is_onnx_path(checkpoint)
    cls, kwargs = inferencer_for(checkpoint, dtype, deploy)
    if inferencer_cls is not None:
        cls = inferencer_cls
    device = onnx_device(checkpoint, device) if onnx else _device(device)
    if dtype is not None:
        check_dtype(dtype, device)
    kind, items = collect_inputs(input)
    check_output_folder(out, '--out', inputs=[input, config, checkpoint])
    if kind == 'video':
        _check_video(items[0])
        base, label_dir = _video_outputs(out, items[0])
        planned = [base + '.mp4', base + '.avi']
        if frame_labels:
            planned.append(label_dir)
        check_planned_outputs(planned, [input, config, checkpoint], force)
    else:
        inputs = [p for p, _ in items] + [config, checkpoint]
        check_planned_outputs(
            [o for pair in _image_outputs(out, items) for o in pair], inputs,
            force)
    cfg = load_config(config, cfg_options)
    if onnx:  # checked against the config by ORTSegmentor's builder
        inferencer = cls(cfg, checkpoint, device=device, **kwargs)
        how = ' (onnxruntime)'
    else:
        ckpt = read_checkpoint(checkpoint)
        inferencer = cls(
            cfg, checkpoint, device=device, deploy=deploy, checkpoint=ckpt,
            **kwargs)
        del ckpt
        how = (' (deploy mode)' if deploy else '') + (
            f' ({dtype} autocast)' if dtype not in (None, 'fp32') else '')
    model = inferencer.model
    print(f'{checkpoint} on {device}{how}: '
          f'{len(model.dataset_meta["classes"])} classes')
    report = InferenceReport(total=len(items))
    try:
        if kind == 'video':
            return infer_video(inferencer, items[0], out, batch_size,
                               opacity, frame_labels, report)
        return infer_images(inferencer, items, out, batch_size, opacity,
                            report)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f'interrupted after {len(report.written)} of {report.total} '
            f'{"frames" if kind == "video" else "images"}; every file written '
            f'to {out} is complete (each is written to a temporary name '
            'first). Run the command again with --force to redo the '
            'outputs.') from None


def report_skipped(report: InferenceReport) -> int:
    """Print the skipped inputs; the exit status of the run (1 when any
    input was skipped)."""
    if not report.skipped:
        return 0
    lines = '\n'.join(f'  {p}: {why}' for p, why in report.skipped)
    print(f'skipped {len(report.skipped)} of {report.total} input(s):\n'
          f'{lines}', file=sys.stderr)
    print(f'error: {len(report.skipped)} of {report.total} input(s) could '
          'not be read and were skipped (listed above); the others were '
          'written.', file=sys.stderr)
    return 1
