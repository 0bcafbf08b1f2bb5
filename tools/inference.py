#!/usr/bin/env python
"""Run a trained segmentor on an image, a folder of images or a video.

    python tools/inference.py INPUT CONFIG CHECKPOINT --out DIR
        [--device cpu|cuda:0] [--deploy] [--opacity 0.5] [--batch-size 1]
        [--frame-labels] [--force] [--cfg-options k=v ...]

INPUT is an image file, a folder (searched recursively for images) or a
video file. Written under ``--out``:

* images / folders: ``overlay/<name>.png`` (the prediction blended over the
  image with MMSegmentation's ``SegLocalVisualizer``, plus a legend strip
  below it naming the classes present, largest first) and
  ``labels/<name>.png`` (the raw prediction: one uint8 class index per
  pixel, the same size as the input image; uint16 when there are more than
  256 classes). Sub-folders of a folder input are kept.
* videos: ``<name>_overlay.mp4`` (``.avi``/MJPG where this OpenCV has no
  MP4 encoder), same frame rate, each frame with its legend; with
  ``--frame-labels`` also ``<name>_labels/<frame:06d>.png``.

Colours and class names come from the checkpoint's ``dataset_meta``
(written by every MMEngine training run), else from the config's dataset.
The model is built with ``mmseg.apis.init_model`` (no teacher and no
pretrained-backbone file needed: the training-only SIAM branch is not built
for inference) and run with ``mmseg.apis.inference_model``, i.e. with the
config's ``test_pipeline`` (resize) and the model's own post-processing
back to the input size. ``--deploy`` runs the model after
``mmseg_sctnet.deploy.switch_to_deploy``.

Existing output files are not overwritten unless ``--force``; an output
path that is one of the inputs is refused in any case.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter

import _bootstrap  # noqa: F401

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
            '.ppm', '.pgm')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg',
              '.mpeg', '.wmv')

# legend layout (pixels)
_FONT_SCALE = 0.4
_ROW_H = 18
_SWATCH = 12
_PAD = 4
_MAX_VIDEO_ROWS = 3


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Segment an image, a folder of images or a video and '
        'write colour overlays (with a legend) and raw label PNGs.')
    p.add_argument('input', help='image file, folder of images, or video')
    p.add_argument('config', help='config file the checkpoint was trained '
                   'with')
    p.add_argument('checkpoint', help='checkpoint file (.pth)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument(
        '--device',
        default=None,
        help='cpu, cuda or cuda:N (default: cuda:0 when available, else cpu)')
    p.add_argument(
        '--deploy',
        action='store_true',
        help='run the deployment form of the model '
        '(mmseg_sctnet.deploy.switch_to_deploy)')
    p.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the colour overlay, in (0, 1] (default 0.5)')
    p.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images (or video frames) per forward pass; images of '
        'different sizes are never batched together (default 1)')
    p.add_argument(
        '--frame-labels',
        action='store_true',
        help='video input: also write each frame\'s label PNG')
    p.add_argument(
        '--force',
        action='store_true',
        help='overwrite output files left by an earlier run')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_pipeline.1.scale=[1024,512]')
    args = p.parse_args(argv)
    if not 0 < args.opacity <= 1:
        p.error(f'--opacity must be in (0, 1], got {args.opacity}')
    if args.batch_size < 1:
        p.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def fail(msg):
    sys.exit(f'error: {msg}')


# ----------------------------------------------------------------------
# inputs and outputs
def collect_inputs(path, out_dir):
    """Return ``('video', [path])`` or ``('images', [(path, rel_name)])``.

    ``rel_name`` is the output name (``.png``) relative to the output
    folder, sub-folders kept; two images that differ only by extension
    (``a.jpg``, ``a.png``) keep their extension in the name.
    """
    if not osp.exists(path):
        fail(f'input not found: {path}')
    if osp.isfile(path):
        ext = osp.splitext(path)[1].lower()
        if ext in VIDEO_EXTS:
            return 'video', [path]
        if ext in IMG_EXTS:
            return 'images', [(path, osp.splitext(osp.basename(path))[0] +
                               '.png')]
        fail(f'{path}: unsupported file type "{ext}"; give an image '
             f'({", ".join(IMG_EXTS)}), a video ({", ".join(VIDEO_EXTS)}) '
             'or a folder of images')
    root = osp.realpath(path)
    out_real = osp.realpath(out_dir)
    if out_real == root or out_real.startswith(root + os.sep):
        fail(f'--out {out_dir} is inside the input folder {path}; choose an '
             'output folder outside it (a later run would read the outputs '
             'as inputs)')
    files = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for f in sorted(filenames):
            if osp.splitext(f)[1].lower() in IMG_EXTS:
                files.append(osp.relpath(osp.join(dirpath, f), path))
    if not files:
        fail(f'no images ({", ".join(IMG_EXTS)}) found in folder {path}')
    stems = Counter(osp.splitext(f)[0] for f in files)
    items = []
    for f in files:
        stem, ext = osp.splitext(f)
        name = stem + ('_' + ext[1:] if stems[stem] > 1 else '') + '.png'
        items.append((osp.join(path, f), name))
    return 'images', items


def check_outputs(outputs, inputs, force):
    """Refuse to write over an input, or over existing files without
    ``--force``."""
    ins = {osp.realpath(p) for p in inputs}
    for o in outputs:
        if osp.realpath(o) in ins:
            fail(f'output {o} would overwrite the input file of the same '
                 'name; choose another --out')
    existing = [o for o in outputs if osp.exists(o)]
    if existing and not force:
        more = f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''
        fail(f'{existing[0]} already exists{more}; pass --force to overwrite '
             'or choose another --out')


# ----------------------------------------------------------------------
# model
def _meta_from_config(cfg):
    """Classes/palette of the config's test (else val/train) dataset."""
    from mmseg.registry import DATASETS
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        ds = cfg.get(key, {}) or {}
        ds = ds.get('dataset', {}) or {}
        meta = dict(ds.get('metainfo', None) or {})
        if 'classes' not in meta and isinstance(ds.get('type'), str):
            cls = DATASETS.get(ds['type'])
            if cls is not None:
                meta = {**dict(getattr(cls, 'METAINFO', {})), **meta}
        if meta.get('classes'):
            return meta
    return {}


def _palette(n, palette=None):
    """``n`` RGB colours: the given ones, then fixed pseudo-random ones."""
    import numpy as np
    out = [tuple(int(v) for v in c) for c in (palette or [])][:n]
    rng = np.random.RandomState(42)
    extra = rng.randint(0, 256, (max(0, n - len(out)), 3))
    return out + [tuple(int(v) for v in c) for c in extra]


def _is_deploy_checkpoint(ckpt):
    try:
        from mmseg_sctnet.deploy import is_deploy_checkpoint
    except ImportError:
        return False
    return is_deploy_checkpoint(ckpt)


def build_model(args):
    import warnings

    import torch
    from mmengine.config import Config
    from mmengine.logging import print_log
    from mmseg.apis import init_model

    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint)):
        if not osp.isfile(path):
            fail(f'{what} file not found: {path}')
    device = args.device
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    elif device.startswith('cuda') and not torch.cuda.is_available():
        fail(f'--device {device}: this PyTorch sees no CUDA GPU '
             f'(torch {torch.__version__}, cuda {torch.version.cuda}); use '
             '--device cpu or install a CUDA build of PyTorch')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # inference builds no teacher (init_model sets train_cfg=None) and loads
    # no pretrained backbone file
    if isinstance(cfg.model.get('backbone', {}).get('init_cfg'), dict):
        cfg.model.backbone.init_cfg = None
    if 'test_pipeline' not in cfg:
        fail(f'{args.config} has no test_pipeline (the resize used at test '
             'time); add one as in configs/custom/custom_dataset.py')
    from mmseg_sctnet.compat import safe_torch_load
    from mmseg_sctnet.models.utils import extract_state_dict
    try:
        ckpt = safe_torch_load(args.checkpoint, map_location='cpu')
    except Exception as e:  # unreadable, unsafe or not a torch file
        fail(f'could not read checkpoint {args.checkpoint}: {e}')
    if not isinstance(ckpt, dict):
        fail(f'{args.checkpoint} is not a checkpoint (a {type(ckpt)})')
    if _is_deploy_checkpoint(ckpt):
        # written by tools/deploy.py: a folded model, loaded by its package
        from mmseg_sctnet.deploy import \
            load_inference_model as init_deploy_model
        model = init_deploy_model(cfg, args.checkpoint, device='cpu')
        model.cfg = cfg  # what mmseg's inference_model reads the pipeline
        args.deploy = False  # already deployed
    else:
        model = init_model(cfg, None, device='cpu')
        try:
            missing, unexpected = model.load_state_dict(
                extract_state_dict(ckpt), strict=False)
        except (ValueError, RuntimeError) as e:
            fail(f'could not load {args.checkpoint} into the model of '
                 f'{args.config}:\n{e}')
        if missing or unexpected:
            fail(f'{args.checkpoint} does not match the model of '
                 f'{args.config}: {len(missing)} missing tensors (e.g. '
                 f'{missing[:3]}) and {len(unexpected)} unexpected ones (e.g. '
                 f'{unexpected[:3]}). Use the config the checkpoint was '
                 'trained with (same model size); a teacher file from '
                 'tools/pth_convert.py is not a segmentor checkpoint.')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if meta.get('dataset_meta'):
        dataset_meta = dict(meta['dataset_meta'])
        source = 'checkpoint'
    elif meta.get('CLASSES'):  # checkpoints of MMSegmentation 0.x
        dataset_meta = dict(classes=meta['CLASSES'],
                            palette=meta.get('PALETTE'))
        source = 'checkpoint (MMSegmentation 0.x meta)'
    else:
        dataset_meta = _meta_from_config(cfg)
        source = f'config {args.config}'
    n = model.decode_head.num_classes
    classes = list(dataset_meta.get('classes') or [])
    if len(classes) != n:
        warnings.warn(f'{source} names {len(classes)} classes but the model '
                      f'predicts {n}; unnamed classes are called "class K".')
        classes = (classes + [f'class {i}' for i in range(len(classes), n)
                              ])[:n]
    model.dataset_meta = dict(
        classes=tuple(classes),
        palette=_palette(n, dataset_meta.get('palette')))
    print_log(f'classes and palette from the {source}', logger='current')
    if args.deploy:
        try:
            from mmseg_sctnet.deploy import switch_to_deploy
        except ImportError as e:
            fail('--deploy needs mmseg_sctnet.deploy.switch_to_deploy, which '
                 f'this installation does not provide ({e}); run without '
                 '--deploy')
        deployed = switch_to_deploy(model)
        if deployed is not None:
            model = deployed
        model.eval()
    model.to(device)
    return model, device


def predict(model, images):
    """Label maps (``[H, W]`` int64 numpy) of a list of BGR images of one
    size, via ``mmseg.apis.inference_model``."""
    from mmseg.apis import inference_model
    results = inference_model(model, list(images))
    return [r.pred_sem_seg.data[0].cpu().numpy() for r in results]


# ----------------------------------------------------------------------
# drawing
def _text_width(text):
    import cv2
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE,
                                1)
    return w


def legend_cell_width(names):
    return _SWATCH + 3 * _PAD + max(_text_width(n) for n in names)


def draw_legend(label, classes, palette, width, cell_w, rows=None):
    """An RGB legend strip of the classes present in ``label``.

    Classes are listed largest area first in a grid of ``cell_w``-wide
    cells filling ``width``. ``rows`` fixes the strip height (video); when
    not all classes fit, the last cell says how many more there are.
    """
    import cv2
    import numpy as np
    ids, counts = np.unique(label, return_counts=True)
    keep = ids < len(classes)
    ids, counts = ids[keep], counts[keep]
    ids = ids[np.argsort(-counts, kind='stable')]
    cols = max(1, width // cell_w)
    if rows is None:
        rows = max(1, -(-len(ids) // cols))
    capacity = rows * cols
    entries = [(classes[i], palette[i]) for i in ids]
    if len(entries) > capacity:
        hidden = len(entries) - capacity + 1
        entries = entries[:capacity - 1] + [(f'+{hidden} more', None)]
    strip = np.full((rows * _ROW_H + _PAD, width, 3), 32, np.uint8)
    for k, (name, colour) in enumerate(entries):
        r, c = divmod(k, cols)
        x, y = c * cell_w + _PAD, r * _ROW_H + _PAD
        if colour is not None:
            cv2.rectangle(strip, (x, y + 1), (x + _SWATCH, y + 1 + _SWATCH),
                          tuple(int(v) for v in colour), -1)
            cv2.rectangle(strip, (x, y + 1), (x + _SWATCH, y + 1 + _SWATCH),
                          (255, 255, 255), 1)
        cv2.putText(strip, name, (x + _SWATCH + _PAD, y + _SWATCH - 1),
                    cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, (255, 255, 255),
                    1, cv2.LINE_AA)
    return strip


class Painter:
    """Overlay (``SegLocalVisualizer``) + legend strip, RGB in, BGR out."""

    def __init__(self, dataset_meta, opacity):
        from mmseg.visualization import SegLocalVisualizer
        self.classes = list(dataset_meta['classes'])
        self.palette = [tuple(c) for c in dataset_meta['palette']]
        self.vis = SegLocalVisualizer(
            name=f'sctnet_inference_{id(self)}', alpha=opacity)
        self.vis.dataset_meta = dict(
            classes=self.classes, palette=self.palette)

    def overlay(self, image_bgr, label):
        """The prediction blended over the image, RGB ``[H, W, 3]``."""
        import torch
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        sample = SegDataSample()
        sample.pred_sem_seg = PixelData(
            data=torch.from_numpy(label[None].astype('int64')))
        self.vis.add_datasample(
            'pred',
            image_bgr[..., ::-1].copy(),
            sample,
            draw_gt=False,
            with_labels=False)
        return self.vis.get_image()

    def compose(self, image_bgr, label, width=None, cell_w=None, rows=None):
        """Overlay on top, legend strip below; BGR, for ``cv2`` writers.

        The canvas is ``max(W, width)`` wide; the overlay sits in its
        top-left ``H x W`` corner.
        """
        import numpy as np
        over = self.overlay(image_bgr, label)
        h, w = over.shape[:2]
        present = [self.classes[i] for i in np.unique(label)
                   if i < len(self.classes)]
        cell_w = cell_w or legend_cell_width(present or ['-'])
        width = max(w, width or 0, cell_w)
        legend = draw_legend(label, self.classes, self.palette, width, cell_w,
                             rows)
        canvas = np.zeros((h + legend.shape[0], width, 3), np.uint8)
        canvas[:h, :w] = over
        canvas[h:] = legend
        return np.ascontiguousarray(canvas[..., ::-1])


def write_label(path, label, num_classes):
    import cv2
    dtype = 'uint8' if num_classes <= 256 else 'uint16'
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, label.astype(dtype)):
        fail(f'could not write {path}')


def write_image(path, img):
    import cv2
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, img):
        fail(f'could not write {path}')


# ----------------------------------------------------------------------
def image_outputs(out, items):
    """``overlay_dir, label_dir, [(overlay_path, label_path)]``."""
    overlay_dir = osp.join(out, 'overlay')
    label_dir = osp.join(out, 'labels')
    return overlay_dir, label_dir, [(osp.join(overlay_dir, n),
                                     osp.join(label_dir, n))
                                    for _, n in items]


def video_outputs(out, path):
    """``overlay path without extension, label folder``."""
    stem = osp.splitext(osp.basename(path))[0]
    return osp.join(out, stem + '_overlay'), osp.join(out, stem + '_labels')


def run_images(args, model, items):
    import mmcv
    from mmengine.utils import ProgressBar
    overlay_dir, label_dir, outs = image_outputs(args.out, items)
    painter = Painter(model.dataset_meta, args.opacity)
    n_cls = len(painter.classes)
    bar = ProgressBar(len(items))
    i = 0
    while i < len(items):
        batch = []
        while i < len(items) and len(batch) < args.batch_size:
            img = mmcv.imread(items[i][0])
            if img is None:
                fail(f'could not read image {items[i][0]}')
            if batch and img.shape != batch[0][1].shape:
                break
            batch.append((i, img))
            i += 1
        labels = predict(model, [img for _, img in batch])
        for (k, img), label in zip(batch, labels):
            overlay_path, label_path = outs[k]
            write_label(label_path, label, n_cls)
            write_image(overlay_path, painter.compose(img, label))
            bar.update()
    print(f'\nwrote {len(items)} overlay(s) to {overlay_dir} and '
          f'{len(items)} label map(s) to {label_dir}')


def _open_writer(base, fps, size):
    import cv2
    for ext, codec in (('.mp4', 'mp4v'), ('.avi', 'MJPG')):
        path = base + ext
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), fps,
                                 size)
        if writer.isOpened():
            return writer, path
        writer.release()
        if osp.exists(path):
            os.remove(path)
    fail(f'OpenCV could not open a video writer for {base}.mp4/.avi '
         '(no mp4v or MJPG encoder)')


def run_video(args, model, path):
    import cv2
    from mmengine.utils import ProgressBar
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        fail(f'OpenCV could not open video {path}')
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    base, label_dir = video_outputs(args.out, path)
    os.makedirs(args.out, exist_ok=True)

    painter = Painter(model.dataset_meta, args.opacity)
    n_cls = len(painter.classes)
    # one frame size for the whole video: the legend grid is sized for
    # every class name and a fixed number of rows
    cell_w = legend_cell_width(painter.classes)
    width = max(w, cell_w)
    cols = max(1, width // cell_w)
    rows = min(-(-n_cls // cols), _MAX_VIDEO_ROWS)
    frame_h = h + rows * _ROW_H + _PAD
    writer, out_path = _open_writer(base, fps, (width, frame_h))
    bar = ProgressBar(n_frames)
    done = 0
    try:
        while True:
            frames = []
            while len(frames) < args.batch_size:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                break
            for frame, label in zip(frames, predict(model, frames)):
                canvas = painter.compose(frame, label, width, cell_w, rows)
                writer.write(canvas)
                if args.frame_labels:
                    write_label(
                        osp.join(label_dir, f'{done:06d}.png'), label, n_cls)
                done += 1
                bar.update()
    finally:
        writer.release()
        cap.release()
    if done == 0:
        os.remove(out_path)
        fail(f'no frame could be read from {path}')
    print(f'\nwrote {done} frame(s) at {fps:g} fps to {out_path}' +
          (f' and their label maps to {label_dir}'
           if args.frame_labels else ''))


def main(argv=None):
    args = parse_args(argv)
    kind, items = collect_inputs(args.input, args.out)
    # refuse before the (slow) model build
    if kind == 'video':
        base, label_dir = video_outputs(args.out, items[0])
        planned = [base + '.mp4', base + '.avi']
        if args.frame_labels:
            planned.append(label_dir)
        check_outputs(planned, items, args.force)
    else:
        outs = image_outputs(args.out, items)[2]
        check_outputs([o for pair in outs for o in pair],
                      [p for p, _ in items], args.force)
    import mmseg_sctnet  # noqa: F401  (registers SCTNet, applies compat)
    model, device = build_model(args)
    print(f'{args.checkpoint} on {device}'
          f'{" (deploy mode)" if args.deploy else ""}: '
          f'{model.decode_head.num_classes} classes')
    if kind == 'video':
        run_video(args, model, items[0])
    else:
        run_images(args, model, items)


if __name__ == '__main__':
    main()
