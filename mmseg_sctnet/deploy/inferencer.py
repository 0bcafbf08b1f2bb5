"""Inferencers: MMSegmentation's ``MMSegInferencer`` for the models of
this project, in PyTorch and in the deployment backends
(``tools/inference.py``).

* :class:`SCTNetInferencer`: the PyTorch model of a config and an eager or
  deploy checkpoint (see its docstring for the extension points it uses);
* :class:`ORTInferencer`: an ONNX file (``tools/export_onnx.py``: fp32,
  fp16 or int8; dynamic or static shape) run by onnxruntime on the CPU.
  ``_init_model`` builds the config's
  :class:`~mmseg_sctnet.deploy.ort_segmentor.ORTSegmentor` (the file is
  checked against the config first: missing, not ONNX, another class
  count); the PyTorch checkpoint reader is never involved.
* :class:`LowPrecisionInferencer`: the PyTorch model with its
  :meth:`forward` under ``torch.autocast`` in bf16 (CPUs with AVX512-BF16
  or AMX-BF16, GPUs with bf16) or fp16 (GPUs); a device without native
  support is refused before the model is built
  (:func:`~mmseg_sctnet.deploy.dtype.check_dtype`), nothing falls back.

The pipeline, class names, legend, batching and the files
``run_inference`` writes are the same for all three.
:func:`inferencer_for` picks the class from the checkpoint's suffix and
the precision, and refuses the combinations that mean nothing.
"""
import copy
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.apis import MMSegInferencer
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from ..io.checkpoint import read_checkpoint
from ..io.errors import ConfigError, DeployUsageError, UserError
from ..io.files import write_png
from ..models.deploy_form import is_deployed, switch_to_deploy
from ..visualization import add_legend, classes_by_area
from .dtype import DTYPES, check_dtype
from .model import build_inference_model, load_weights, require_sctnet
from .ort_segmentor import is_onnx_path, onnx_model_config

__all__ = [
    'SCTNetInferencer', 'ORTInferencer', 'LowPrecisionInferencer',
    'inferencer_for', 'onnx_device'
]


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
    by :func:`~mmseg_sctnet.apis.inference.run_inference` stay the same.
    Below are two: :class:`ORTInferencer` (an ONNX file in onnxruntime)
    and :class:`LowPrecisionInferencer` (bf16/fp16 under
    ``torch.autocast``).

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
        """The model of ``cfg`` with ``weights`` (eager or deploy), built
        by the project's one path (:mod:`mmseg_sctnet.deploy.model`)."""
        checkpoint = self._checkpoint
        if checkpoint is None and weights is not None:
            checkpoint = read_checkpoint(weights)
        self.weights_name = weights
        model = build_inference_model(cfg, init_weights=False,
                                      source=self.source)
        if checkpoint is None:
            warnings.warn('No checkpoint: the predictions come from random '
                          'weights.')
        else:
            model = load_weights(model, checkpoint, weights or 'checkpoint')
        if self.deploy and not is_deployed(model):
            model = self._switch_to_deploy(model)
        model.dataset_meta = self._dataset_meta(model, checkpoint, cfg)
        return model.to(device).eval()

    def _switch_to_deploy(self, model):
        try:
            require_sctnet(model, self.source)
        except UserError as err:
            raise ConfigError(f'{err} Run without --deploy.') from None
        return switch_to_deploy(model)

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


class ORTInferencer(SCTNetInferencer):
    """``SCTNetInferencer`` whose network is an ONNX file run by
    onnxruntime (CPU execution provider).

    Class names and palette come from the config's dataset (an ONNX file
    carries none). A static-shape file gets each image fitted to its
    shape and the logits mapped back, with a note in the log
    (:class:`~mmseg_sctnet.deploy.ort_segmentor.ORTSegmentor`).

    Args:
        model: config path or ``Config`` (the one the file was exported
            from: its test pipeline, data preprocessor and class count).
        weights: the ``.onnx`` path.
        device: ``'cpu'`` (or None): onnxruntime runs on the CPU here.
        threads: onnxruntime intra-op threads (default: PyTorch's,
            ``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS``).
    """

    def __init__(self,
                 model,
                 weights: str,
                 device: Optional[str] = None,
                 threads: Optional[int] = None,
                 scope: str = 'mmseg') -> None:
        onnx_device(weights, device)
        self.threads = threads or torch.get_num_threads()
        super().__init__(model, weights, device='cpu', scope=scope)

    def _init_model(self, cfg, weights: Optional[str], device: str = 'cpu'):
        cfg = copy.deepcopy(cfg)
        onnx_model_config(cfg, weights, self.threads)  # checks the file
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        self.weights_name = weights
        model.dataset_meta = self._dataset_meta(model, None, cfg)
        return model.eval()


class LowPrecisionInferencer(SCTNetInferencer):
    """``SCTNetInferencer`` running the network under ``torch.autocast``
    (fp32 weights; convolutions and matrix products in ``dtype``,
    normalisations and softmax in fp32), as ``speed/torch_speed.py
    --dtype`` times it.

    Args:
        dtype: ``'bf16'`` or ``'fp16'``; checked against the device before
            the model is built (:func:`~mmseg_sctnet.deploy.dtype.
            check_dtype`: bf16 needs AVX512-BF16/AMX-BF16 on a CPU, fp16 a
            CUDA device).
        Other arguments (``deploy``, ``checkpoint``, ``scope``) as
        :class:`SCTNetInferencer`.
    """

    def __init__(self, model, weights: Optional[str] = None,
                 device: Optional[str] = None, dtype: str = 'bf16',
                 **kwargs) -> None:
        if dtype not in ('bf16', 'fp16'):
            raise DeployUsageError(
                f'LowPrecisionInferencer runs bf16 or fp16, not {dtype!r}; '
                'use SCTNetInferencer for fp32')
        dev = torch.device(device or (
            'cuda:0' if torch.cuda.is_available() else 'cpu'))
        check_dtype(dtype, dev)
        self.dtype = dtype
        self.device_type = dev.type
        super().__init__(model, weights, device=device, **kwargs)

    def forward(self, inputs, **kwargs) -> list:
        """:meth:`SCTNetInferencer.forward` under ``torch.autocast``."""
        with torch.autocast(self.device_type, dtype=DTYPES[self.dtype]):
            return super().forward(inputs, **kwargs)


def onnx_device(onnx_file: str, device: Optional[str] = None) -> str:
    """``'cpu'``: the device of an ONNX file here (onnxruntime's CPU
    execution provider); another ``device`` is refused."""
    if device not in (None, 'cpu'):
        raise DeployUsageError(
            f'--device {device}: {onnx_file} runs in onnxruntime on the '
            'CPU; use --device cpu (or leave it out), or the .pth '
            'checkpoint on the GPU')
    return 'cpu'


def inferencer_for(checkpoint: str,
                   dtype: Optional[str] = None,
                   deploy: bool = False) -> Tuple[type, dict]:
    """The inferencer class for ``checkpoint`` and its extra keyword
    arguments: ``(cls, kwargs)``.

    A path ending in ``.onnx`` is an ONNX file (:class:`ORTInferencer`);
    anything else a PyTorch checkpoint, in fp32 (``dtype`` None or
    ``'fp32'``: :class:`SCTNetInferencer`) or under autocast
    (:class:`LowPrecisionInferencer`).

    Raises:
        DeployUsageError: ``dtype`` or ``deploy`` with an ONNX file (the
            file has its own precision and is the deployed graph), an
            unknown ``dtype``.
    """
    if dtype is not None and dtype not in DTYPES:
        raise DeployUsageError(
            f'--dtype {dtype}: choose one of {", ".join(DTYPES)}')
    if is_onnx_path(checkpoint):
        if dtype is not None:
            raise DeployUsageError(
                f'--dtype {dtype}: {checkpoint} is an ONNX file, which runs '
                'in the precision it was exported in (tools/export_onnx.py: '
                'fp32, --fp16 or --int8); leave out --dtype, or give the '
                '.pth checkpoint')
        if deploy:
            raise DeployUsageError(
                f'--deploy: {checkpoint} is an ONNX file, already the '
                'deployed graph; leave out --deploy')
        return ORTInferencer, {}
    if dtype in (None, 'fp32'):
        return SCTNetInferencer, {}
    return LowPrecisionInferencer, dict(dtype=dtype)
