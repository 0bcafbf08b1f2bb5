"""An ONNX file as an MMSegmentation segmentor (onnxruntime, CPU).

:class:`ORTSegmentor` is a registered ``BaseSegmentor``: a config whose
``model`` is ``dict(type='ORTSegmentor', onnx_file=...)`` runs through
MMEngine's test loop, the config's dataset, test pipeline and
``IoUMetric`` and the visualisation hook unchanged, as a ``.pth`` does
(MMDeploy's test tool does the same for its backends).
:func:`onnx_model_config` turns a training config into that form;
``tools/test.py CONFIG MODEL.onnx`` uses it.

``whole`` inference as :class:`mmseg.models.EncoderDecoder`: the batch the
data preprocessor produced goes through the file; logits are resized to
the input size and ``postprocess_result`` maps them back to the original
image. A static-shape file gets each image fitted to its shape
(keep-ratio resize + padding, :func:`.onnx_runtime.fit_to_shape`) and the
logits mapped back (:func:`.onnx_runtime.unfit_logits`).
"""
import copy
import os
from types import SimpleNamespace
from typing import List, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODEL_WRAPPERS, MODELS
from torch import Tensor, nn

from ..io.errors import OnnxModelError
from .onnx_runtime import fit_to_shape, onnx_io, ort_session, unfit_logits


def check_onnx_for_config(onnx_file: str, num_classes: int,
                          source: str = 'the config') -> dict:
    """Read an ONNX file's interface and check it against a config.

    Raises:
        OnnxModelError: missing/unparsable file, not an image -> logits
            graph, or a class count other than ``num_classes``.
    """
    io = onnx_io(onnx_file)
    ishape, oshape = io['input_shape'], io['output_shape']
    if len(ishape) != 4 or len(oshape) != 4 or ishape[1] not in (3, None):
        raise OnnxModelError(
            f'{onnx_file}: input {ishape} -> output {oshape} is not an '
            'image [N, 3, H, W] -> logits [N, C, H, W] model; export one '
            'with tools/export_onnx.py')
    if oshape[1] is not None and oshape[1] != num_classes:
        raise OnnxModelError(
            f'{onnx_file} predicts {oshape[1]} classes but {source} has '
            f'{num_classes}; use the config the model was exported from')
    return io


@MODELS.register_module()
class ORTSegmentor(BaseSegmentor):
    """Inference-only segmentor that runs an ONNX file in onnxruntime.

    Args:
        onnx_file (str): image ``[N, 3, H, W]`` (normalised, as
            ``data_preprocessor`` outputs) -> logits ``[N, C, h, w]``
            (any ``h, w``: the input size or the head's 1/8), as written by
            ``tools/export_onnx.py`` (fp32, fp16 or int8).
        num_classes (int): the config's class count (checked).
        align_corners (bool): of the final resize (the decode head's).
        data_preprocessor (dict): the config's ``SegDataPreProcessor``.
        test_cfg (dict): ``mode='whole'`` (``slide`` is refused).
        threads (int, optional): onnxruntime intra-op threads.
    """

    def __init__(self,
                 onnx_file: str,
                 num_classes: int,
                 align_corners: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 threads: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.test_cfg = test_cfg or dict(mode='whole')
        if self.test_cfg.get('mode', 'whole') != 'whole':
            raise OnnxModelError(
                f'test_cfg mode {self.test_cfg["mode"]!r}: an ONNX model is '
                "evaluated with mode='whole' (export with --dynamic, or at "
                'the test size)')
        self.io = check_onnx_for_config(onnx_file, num_classes)
        self.onnx_file = onnx_file
        self.num_classes = num_classes
        self.out_channels = num_classes
        self.align_corners = align_corners
        # what code written for EncoderDecoder reads of its head
        # (postprocess_result, the inferencer's class names)
        self.decode_head = SimpleNamespace(
            num_classes=num_classes, out_channels=num_classes,
            align_corners=align_corners, threshold=0.3)
        self.session = ort_session(onnx_file, threads)
        self.input_name = self.session.get_inputs()[0].name
        h, w = self.io['input_shape'][2:]
        self.static_hw = (h, w) if h is not None and w is not None else None
        self.static_batch = self.io['input_shape'][0]
        self.feed_dtype = self.io['feed_dtype']
        self._told = False

    def _run(self, x: Tensor) -> Tensor:
        """One forward of the file on a ``[n, 3, H, W]`` batch."""
        size = tuple(x.shape[2:])
        valid = None
        if self.static_hw is not None and size != self.static_hw:
            x, valid = fit_to_shape(x, self.static_hw)
            if not self._told:
                print_log(
                    f'{self.onnx_file} has the static input size '
                    f'{self.static_hw[0]}x{self.static_hw[1]}: inputs of '
                    f'{size[0]}x{size[1]} are resized (keeping the aspect '
                    'ratio) and padded to it; export with --dynamic or at '
                    'the test size to avoid this', logger='current')
                self._told = True
        feed = x.detach().cpu().numpy().astype(self.feed_dtype)
        if self.static_batch not in (None, feed.shape[0]):
            if self.static_batch != 1:
                raise OnnxModelError(
                    f'{self.onnx_file} has a static batch of '
                    f'{self.static_batch}; the test loop gives '
                    f'{feed.shape[0]} (export with --dynamic)')
            out = np.concatenate([
                self.session.run(None, {self.input_name: feed[i:i + 1]})[0]
                for i in range(feed.shape[0])
            ])
        else:
            out = self.session.run(None, {self.input_name: feed})[0]
        logits = torch.from_numpy(out.astype(np.float32))
        if valid is not None:
            return unfit_logits(logits, valid, self.static_hw, size,
                                self.align_corners)
        if tuple(logits.shape[2:]) != size:
            logits = torch.nn.functional.interpolate(
                logits, size=size, mode='bilinear',
                align_corners=self.align_corners)
        return logits

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits at the input size, ``[N, C, H, W]``."""
        return self._run(inputs).to(inputs.device)

    def predict(self, inputs: Tensor, data_samples=None):
        """As ``EncoderDecoder.predict`` with ``whole`` inference."""
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = [
                dict(
                    ori_shape=inputs.shape[2:],
                    img_shape=inputs.shape[2:],
                    pad_shape=inputs.shape[2:],
                    padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        return self.postprocess_result(
            self.encode_decode(inputs, metas), data_samples)

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        return self._run(inputs)

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError(
            'ORTSegmentor runs a whole ONNX graph; it has no features')

    def loss(self, inputs: Tensor, data_samples) -> dict:
        raise NotImplementedError('ORTSegmentor is inference-only')


@MODEL_WRAPPERS.register_module()
class ORTShardWrapper(nn.Module):
    """Model wrapper of an :class:`ORTSegmentor` in a distributed test
    (``--launcher pytorch``, ``tools/dist_test.sh``).

    MMEngine wraps the model of every distributed run in
    DistributedDataParallel, which refuses a module without trainable
    parameters. Evaluation needs no gradient synchronisation: each rank
    runs its own onnxruntime session on its shard of the test set (MMEngine's
    sampler) and the evaluator gathers the results. Selected through the
    config key ``model_wrapper_cfg`` by :func:`onnx_model_config`.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def val_step(self, data) -> list:
        return self.module.val_step(data)

    def test_step(self, data) -> list:
        return self.module.test_step(data)


def is_onnx_path(path: str) -> bool:
    """True for a path that names an ONNX file (by its suffix)."""
    return str(path).lower().endswith('.onnx')


def onnx_model_config(cfg, onnx_file: str, threads: Optional[int] = None):
    """Replace ``cfg.model`` by an :class:`ORTSegmentor` (in place).

    The data preprocessor, class count and ``align_corners`` come from the
    config's model; nothing is loaded (``load_from`` is cleared); a
    distributed run wraps it in :class:`ORTShardWrapper`. The file
    is checked first (missing, not ONNX, other class count: an
    :class:`OnnxModelError` naming it).
    """
    model = cfg.model
    head = model.get('decode_head', {}) or {}
    num_classes = head.get('num_classes')
    if num_classes is None:
        raise OnnxModelError(f'{cfg.filename}: model.decode_head.num_classes '
                             'is not set; cannot check the ONNX file')
    check_onnx_for_config(onnx_file, num_classes, f'{cfg.filename}')
    procs = int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1)
    if threads is None and procs > 1:
        # torchrun's processes share the machine's cores
        threads = max(1, (os.cpu_count() or 1) // procs)
        print_log(f'onnxruntime: {threads} thread(s) per process '
                  f'({procs} processes on this machine)', logger='current')
    cfg.model = dict(
        type='ORTSegmentor',
        onnx_file=onnx_file,
        num_classes=num_classes,
        align_corners=bool(head.get('align_corners', False)),
        data_preprocessor=copy.deepcopy(model.get('data_preprocessor')),
        test_cfg=copy.deepcopy(model.get('test_cfg')) or dict(mode='whole'),
        threads=threads)
    # scoped name: MMEngine looks the type up in its root registry first
    cfg.model_wrapper_cfg = dict(type='mmseg.ORTShardWrapper')
    cfg.load_from = None
    return cfg
