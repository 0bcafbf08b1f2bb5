"""``SCTNetInferencer``: MMSegmentation's ``MMSegInferencer`` for the
checkpoints of this project (see the class docstring)."""
import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.structures import PixelData
from mmseg.apis import MMSegInferencer
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from mmseg_sctnet.compat import read_checkpoint
from mmseg_sctnet.visualization import add_legend, classes_by_area
from .config import ConfigError, explain_build_errors
from .files import PathError

__all__ = ['SCTNetInferencer', 'write_png']


def write_png(path: str, array: np.ndarray) -> None:
    """Write ``array`` as a PNG atomically (a temporary file renamed onto
    ``path``): an interrupted run leaves no half-written file."""
    import cv2
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp.png')
    try:
        if not cv2.imwrite(tmp, array):
            raise PathError(f'could not write {path}')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _dataset_meta_of_config(cfg) -> dict:
    """Classes/palette of the config's test (else val/train) dataset."""
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        ds = ((cfg.get(key) or {}).get('dataset') or {})
        meta = dict(ds.get('metainfo') or {})
        if 'classes' not in meta and isinstance(ds.get('type'), str):
            cls = DATASETS.get(ds['type'])
            if cls is not None:
                meta = {**dict(getattr(cls, 'METAINFO', {})), **meta}
        if meta.get('classes'):
            return meta
    return {}


def _palette(n: int, palette=None) -> List[Tuple[int, int, int]]:
    """``n`` RGB colours: the given ones, then fixed pseudo-random ones."""
    out = [tuple(int(v) for v in c) for c in (palette or [])][:n]
    extra = np.random.RandomState(42).randint(0, 256,
                                              (max(0, n - len(out)), 3))
    return out + [tuple(int(v) for v in c) for c in extra]


def _strip_pretrained(cfg) -> None:
    """No ``Pretrained`` init and no ``pretrained=`` file: inference reads
    only its checkpoint (in place)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for v in cfg.values():
            _strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _strip_pretrained(v)


class SCTNetInferencer(MMSegInferencer):
    """``mmseg.apis.MMSegInferencer`` for the checkpoints of this project.

    Used like MMSegmentation's::

        inferencer = SCTNetInferencer(config, checkpoint, device='cpu')
        result = inferencer(images, return_vis=True)

    What it changes, each through an ``MMSegInferencer`` extension point:

    * :meth:`_init_model`: the checkpoint is read first (the project's safe
      loader; a damaged file fails before anything is built), then the model
      is built for inference: ``train_cfg=None`` (no teacher, no SIAM
      projections) and no pretrained-backbone file. Checkpoints written by
      ``tools/deploy.py`` load into the deployed model; ``deploy=True``
      deploys an eager checkpoint (``switch_to_deploy``).
    * :meth:`_load_weights_to_model`: a checkpoint of another model or
      class count is refused with a message naming both; classes and
      palette come from the checkpoint's meta (MMSegmentation 1.x
      ``dataset_meta``, 0.x ``CLASSES``/``PALETTE``), else from the
      config's dataset, not Cityscapes.
    * :meth:`_init_pipeline`: the config's ``test_pipeline`` (what
      ``mmseg.apis.inference_model`` runs), else the test dataloader's.
    * :meth:`preprocess`: a batch only holds images of one size (the data
      preprocessor does not pad at test time).
    * :meth:`visualize`: MMSegmentation's overlay with one legend strip of
      the classes present below it
      (:func:`mmseg_sctnet.visualization.add_legend`).

    **Other backends.** The network runs in :meth:`forward` only: one
    collated batch in, a list of ``SegDataSample`` with ``pred_sem_seg``
    out. A backend that is not this PyTorch model (ONNX Runtime, TensorRT)
    is a subclass that overrides :meth:`forward` (and :meth:`_init_model`
    to open its file); pipeline, class names, legend and the files written
    by :func:`run_inference` stay the same. :mod:`mmseg_sctnet.deploy.
    inferencer` has two: ``ORTInferencer`` (an ONNX file in onnxruntime)
    and ``LowPrecisionInferencer`` (bf16/fp16 under ``torch.autocast``).

    Args:
        model: config path or ``Config``.
        weights: checkpoint path.
        device: ``'cpu'``, ``'cuda:0'``...; default: a GPU when visible.
        deploy: run the deployment form (BatchNorms folded).
        checkpoint: the checkpoint dict when already read (``weights`` is
            then only its name in messages).
    """

    visualize_kwargs = MMSegInferencer.visualize_kwargs | {'legend'}

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 deploy: bool = False,
                 checkpoint: Optional[dict] = None,
                 scope: str = 'mmseg') -> None:
        # read by _init_model, which the base constructor calls
        self.deploy = deploy
        self._checkpoint = checkpoint
        self.source = osp.basename(str(getattr(model, 'filename', None)
                                       or model))
        super().__init__(
            model=model, weights=weights, device=device, scope=scope)
        self.show_progress = False  # run_inference shows its own
        self._checkpoint = None

    # ------------------------------------------------------------ model
    def _init_model(self, cfg, weights: Optional[str], device: str = 'cpu'):
        checkpoint = self._checkpoint
        if checkpoint is None and weights is not None:
            checkpoint = read_checkpoint(weights)
        model_cfg = cfg.model.copy()
        model_cfg['train_cfg'] = None
        _strip_pretrained(model_cfg)
        with explain_build_errors(cfg, self.source):
            model = MODELS.build(model_cfg)
        model = revert_sync_batchnorm(model)
        model.cfg = cfg
        self.weights_name = weights
        self._load_weights_to_model(model, checkpoint, cfg)
        if self.deploy and not getattr(self, '_is_deployed', False):
            model = self._switch_to_deploy(model)
        model.to(device)
        model.eval()
        return model

    def _switch_to_deploy(self, model, **options):
        from mmseg_sctnet.deploy import switch_to_deploy
        try:
            out = switch_to_deploy(model, **options)
        except TypeError as err:  # not an SCTNet model
            raise ConfigError(
                f'{self.source}: the deploy form exists for SCTNet models '
                f'only ({err}); run without --deploy.') from None
        return out if out is not None else model

    def _load_weights_to_model(self, model, checkpoint: Optional[dict],
                               cfg) -> None:
        """Load ``checkpoint`` (eager or deploy) and set
        ``model.dataset_meta``."""
        from mmseg_sctnet.deploy import (is_deploy_checkpoint,
                                         load_student_weights)
        from mmseg_sctnet.deploy.api import DEPLOY_META_KEY
        from mmseg_sctnet.models import EncoderDecoderDistill
        from mmseg_sctnet.models.utils import (extract_state_dict,
                                               load_checked_state_dict)
        name = self.weights_name or 'checkpoint'
        self._is_deployed = False
        if checkpoint is None:
            warnings.warn('No checkpoint: the predictions come from random '
                          'weights.')
        elif is_deploy_checkpoint(checkpoint):
            # written by tools/deploy.py: the folded model's tensors
            model = self._switch_to_deploy(
                model, **checkpoint['meta'][DEPLOY_META_KEY])
            load_checked_state_dict(
                model,
                checkpoint['state_dict'],
                headline=f'Deploy checkpoint {name} does not fit the model '
                f'of {self.source}',
                fix='Use the config it was deployed from.',
                source=name)
            self._is_deployed = True
        elif isinstance(model, EncoderDecoderDistill):
            # its load hook refuses another class count or model size with
            # the message init_model and tools/test.py give
            model.load_state_dict(extract_state_dict(checkpoint),
                                  strict=False)
        else:  # every backbone/decode-head tensor, with the model's shape
            load_student_weights(model, checkpoint, source=name)
        model.dataset_meta = self._dataset_meta(model, checkpoint, cfg)

    def _dataset_meta(self, model, checkpoint: Optional[dict], cfg) -> dict:
        meta = (checkpoint or {}).get('meta') or {}
        if meta.get('dataset_meta'):
            found, source = dict(meta['dataset_meta']), 'checkpoint'
        elif meta.get('CLASSES'):  # MMSegmentation 0.x checkpoints
            found = dict(classes=meta['CLASSES'], palette=meta.get('PALETTE'))
            source = 'checkpoint (MMSegmentation 0.x meta)'
        else:
            found, source = _dataset_meta_of_config(cfg), f'config ' \
                f'{self.source}'
        n = getattr(model.decode_head, 'num_classes', None) or len(
            found.get('classes') or [])
        classes = [str(c) for c in (found.get('classes') or [])]
        if len(classes) != n:
            warnings.warn(
                f'the {source} names {len(classes)} classes but the model '
                f'predicts {n}; unnamed classes are called "class K".')
            classes = (classes + [f'class {i}'
                                  for i in range(len(classes), n)])[:n]
        print_log(f'classes and palette from the {source}', logger='current')
        return dict(classes=tuple(classes),
                    palette=_palette(n, found.get('palette')))

    # ------------------------------------------------------------ data
    def _init_pipeline(self, cfg) -> Compose:
        """The config's ``test_pipeline`` (else the test dataloader's),
        without annotation loading, reading files or arrays."""
        pipeline = cfg.get('test_pipeline') or \
            cfg.test_dataloader.dataset.pipeline
        steps = [
            dict(t) for t in pipeline
            if t['type'] not in ('LoadAnnotations', 'LoadDepthAnnotation')
        ]
        loads = [i for i, t in enumerate(steps)
                 if t['type'] == 'LoadImageFromFile']
        if not loads:
            raise ConfigError(
                f'{self.source}: the test pipeline has no LoadImageFromFile '
                'step; add one as in configs/custom/custom_dataset.py.')
        steps[loads[0]]['type'] = 'InferencerLoader'
        return Compose(steps)

    def _init_collate(self, cfg):
        """``pseudo_collate``, as ``mmseg.apis.inference_model`` batches."""
        return pseudo_collate

    def _init_visualizer(self, cfg) -> SegLocalVisualizer:
        """A plain ``SegLocalVisualizer``; files are written by
        :meth:`visualize` (no visualization backends)."""
        return SegLocalVisualizer(name=f'sctnet_inferencer_{id(self)}')

    def preprocess(self, inputs, batch_size: int = 1, **kwargs):
        """Batches of up to ``batch_size`` inputs of one size, in order."""
        chunk = []
        for data in map(self.pipeline, inputs):
            if chunk and (len(chunk) == batch_size or data['inputs'].shape !=
                          chunk[0]['inputs'].shape):
                yield self.collate_fn(chunk)
                chunk = []
            chunk.append(data)
        if chunk:
            yield self.collate_fn(chunk)

    @torch.no_grad()
    def forward(self, inputs, **kwargs) -> list:
        """Run the network on one collated batch -> ``SegDataSample`` list.

        The only place the network runs: override it for another backend
        (see the class docstring).
        """
        return self.model.test_step(inputs)

    # ------------------------------------------------------------ output
    def visualize(self,
                  inputs: list,
                  preds: list,
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: int = 0,
                  img_out_dir: str = '',
                  opacity: float = 0.8,
                  with_labels: Optional[bool] = False,
                  legend: Optional[dict] = None) -> Optional[list]:
        """The prediction blended over each input, a legend strip below.

        Inputs are paths or BGR arrays (as ``mmcv.imread`` returns them).
        Returns RGB images when ``return_vis``; with ``img_out_dir`` also
        writes ``<input name>.png`` there (arrays: a running number).

        Args:
            legend: ``width``/``cell_width``/``rows`` of the legend strip
                (:func:`~mmseg_sctnet.visualization.add_legend`); videos fix
                them so that every frame has the same size.
        """
        if not show and not img_out_dir and not return_vis:
            return None
        meta = self.model.dataset_meta
        self.visualizer.set_dataset_meta(meta['classes'], meta['palette'])
        self.visualizer.alpha = opacity
        results = []
        for single_input, pred in zip(inputs, preds):
            if isinstance(single_input, str):
                img = mmcv.imread(single_input)
                name = osp.splitext(osp.basename(single_input))[0] + '.png'
            else:
                img = single_input
                name = f'{self.num_visualized_imgs:08d}_vis.png'
            label = pred.pred_sem_seg.data[0].cpu().numpy()
            # numpy labels: with a tensor, SegLocalVisualizer mis-indexes
            # 1x1 images (a one-element bool tensor acts as an index)
            sample = SegDataSample(pred_sem_seg=PixelData(data=label[None]))
            self.visualizer.add_datasample(
                name,
                np.ascontiguousarray(img[..., ::-1]),
                sample,
                draw_gt=False,
                with_labels=with_labels)
            drawn = add_legend(
                self.visualizer.get_image(),
                classes_by_area(label, num_classes=len(meta['classes'])),
                meta['classes'], meta['palette'], **(legend or {}))
            if show:
                self.visualizer.show(drawn, wait_time=wait_time)
            if img_out_dir:
                write_png(osp.join(img_out_dir, name), drawn[..., ::-1])
            results.append(drawn)
            self.num_visualized_imgs += 1
        return results if return_vis else None
