"""Inferencers of the deployment backends, for ``tools/inference.py``.

Both subclass :class:`mmseg_sctnet.apis.inferencer.SCTNetInferencer`
(itself MMSegmentation's ``MMSegInferencer``) through the extension points
it names, so the pipeline, class names, legend, batching and the files
``run_inference`` writes stay those of a ``.pth``:

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

:func:`inferencer_for` picks the class from the checkpoint's suffix and
the precision, and refuses the combinations that mean nothing.
"""
import copy
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS

from mmseg_sctnet.apis.inferencer import SCTNetInferencer
from .dtype import DTYPES, check_dtype
from .errors import DeployUsageError
from .ort_segmentor import is_onnx_path, onnx_model_config

__all__ = [
    'ORTInferencer', 'LowPrecisionInferencer', 'inferencer_for', 'onnx_device'
]


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
        Other arguments as :class:`SCTNetInferencer`.
    """

    def __init__(self,
                 model,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 deploy: bool = False,
                 checkpoint: Optional[dict] = None,
                 scope: str = 'mmseg',
                 dtype: str = 'bf16') -> None:
        if dtype not in ('bf16', 'fp16'):
            raise DeployUsageError(
                f'LowPrecisionInferencer runs bf16 or fp16, not {dtype!r}; '
                'use SCTNetInferencer for fp32')
        dev = torch.device(device or (
            'cuda:0' if torch.cuda.is_available() else 'cpu'))
        check_dtype(dtype, dev)
        self.dtype = dtype
        self.device_type = dev.type
        super().__init__(model, weights, device=device, deploy=deploy,
                         checkpoint=checkpoint, scope=scope)

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
