"""Static int8 quantization of the exported student (onnxruntime).

``onnxruntime.quantization.quantize_static`` in QDQ format with per-channel
int8 weights, calibrated on images of the config's **train** split read by
the config's own dataset class through its **test** pipeline and the
model's ``data_preprocessor`` (so calibration sees exactly the
preprocessing the deployed model gets), resized/padded to the export
shape as the evaluation does (:func:`.onnx_runtime.fit_to_shape`).

Which parts stay in float (``float_parts``) is a measured choice
(docs/deploy.md, section "int8"):

* ``attention-norm``: the conv attention's dual normalisation (softmax over
  the pixels, division by the channel sum) and the softmax;
* ``gelu``: the MLP's GELU (``Erf`` decomposition: its ``Mul``/``Add``);
* ``classifier``: the decode head's final 1x1 convolution (``conv_seg``);
* ``final-resize``: the bilinear upsampling of the logits to the input
  size;
* ``head``: the whole decode head (``conv1``, ``bn1``, ``conv_seg``);
* ``stem``: the first two stride-2 convolutions;
* ``elementwise``: every ``Add``/``Mul`` outside the convolutions
  (residual sums, the GELU, the attention's scaling).
"""
import copy
import os
import os.path as osp
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from ..io.config import load_config
from ..io.errors import CalibrationDataError
from .onnx_runtime import fit_to_shape, ort_session

#: --calib-method -> onnxruntime CalibrationMethod name
CALIB_METHODS = {'minmax': 'MinMax', 'entropy': 'Entropy',
                 'percentile': 'Percentile'}
FLOAT_PARTS = ('attention-norm', 'gelu', 'classifier', 'final-resize',
               'head', 'stem', 'elementwise')
#: measured default (docs/deploy.md): see DEFAULT_FLOAT_PARTS_WHY
DEFAULT_FLOAT_PARTS = ('attention-norm', 'gelu', 'classifier',
                       'final-resize')
#: dataset wrappers whose inner dataset holds the images
_WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset',
             'MultiImageMixDataset')


def _train_dataset_cfg(cfg) -> dict:
    loader = cfg.get('train_dataloader')
    if not loader or 'dataset' not in loader:
        raise CalibrationDataError(
            f'{cfg.filename}: no train_dataloader.dataset to draw '
            'calibration images from; int8 calibration reads the train '
            'split (define it in the config)')
    ds = copy.deepcopy(loader['dataset'])
    while ds.get('type') in _WRAPPERS and 'dataset' in ds:
        ds = ds['dataset']
    if ds.get('type') == 'ConcatDataset':
        ds = ds['datasets'][0]
    return ds


def _test_pipeline(cfg) -> list:
    pipe = None
    if cfg.get('test_dataloader') and 'dataset' in cfg.test_dataloader:
        pipe = cfg.test_dataloader.dataset.get('pipeline')
    pipe = pipe or cfg.get('test_pipeline')
    if not pipe:
        raise CalibrationDataError(f'{cfg.filename}: no test pipeline '
                                   '(test_dataloader.dataset.pipeline)')
    # labels are not needed (and may be absent) for calibration
    return [copy.deepcopy(t) for t in pipe
            if t.get('type') != 'LoadAnnotations']


def _split_path(ds: dict) -> str:
    prefix = ds.get('data_prefix') or {}
    img = prefix.get('img_path', '') if isinstance(prefix, dict) else ''
    return osp.join(ds.get('data_root', '') or '', img)


def calibration_inputs(config, num: int, shape: Sequence[int],
                       seed: int = 0,
                       log: Callable = print) -> List[np.ndarray]:
    """``num`` preprocessed train images as float32 ``[1, 3, H, W]``.

    Images are drawn at random (``seed``) from the train split, run
    through the test pipeline and the model's ``data_preprocessor``, and
    fitted to ``shape`` (keep-ratio resize + pad, as
    :class:`~mmseg_sctnet.deploy.ort_segmentor.ORTSegmentor` does).

    Raises:
        CalibrationDataError: the split cannot be read or holds no image.
    """
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds = _train_dataset_cfg(cfg)
    ds['pipeline'] = _test_pipeline(cfg)
    ds.pop('indices', None)
    where = _split_path(ds)
    if where and not osp.isdir(where):
        raise CalibrationDataError(
            f'no calibration data: the train split of {cfg.filename} '
            f'({where}) does not exist; prepare the dataset '
            '(docs/dataset_prepare.md) or point data_root at it with '
            '--cfg-options')
    if where and not any(files for _, _, files in os.walk(where)):
        raise CalibrationDataError(
            f'no calibration data: the train split of {cfg.filename} '
            f'({where}) holds 0 images')
    try:
        dataset = DATASETS.build(ds)
    except Exception as e:  # missing folders, unreadable annotation lists
        raise CalibrationDataError(
            f'no calibration data: cannot read the train split of '
            f'{cfg.filename} ({where or ds.get("type")}): '
            f'{type(e).__name__}: {e}') from None
    if len(dataset) == 0:
        raise CalibrationDataError(
            f'no calibration data: the train split of {cfg.filename} '
            f'({where}) holds 0 images (check img_suffix and data_prefix)')
    n = min(num, len(dataset))
    if n < num:
        log(f'calibration: the train split has only {len(dataset)} images; '
            f'using all of them (asked for {num})')
    idx = sorted(np.random.RandomState(seed).choice(
        len(dataset), n, replace=False).tolist())
    pre = MODELS.build(cfg.model.data_preprocessor).eval()
    out = []
    with torch.no_grad():
        for k, i in enumerate(idx):
            try:
                item = dataset[i]
            except Exception as e:
                raise CalibrationDataError(
                    f'calibration image {i} of {where} cannot be read: '
                    f'{type(e).__name__}: {e}') from None
            batch = pre(pseudo_collate([item]), False)
            x, _ = fit_to_shape(batch['inputs'].float(), tuple(shape))
            out.append(x.numpy().astype(np.float32))
            if (k + 1) % 8 == 0 or k + 1 == n:
                log(f'calibration: {k + 1}/{n} images read', flush=True)
    return out


class _Reader:
    """``CalibrationDataReader`` over a list of arrays, with the
    ``__len__``/``set_range`` that onnxruntime's strided calibration
    (``CalibStridedMinMax``: a few images at a time, bounded memory)
    uses."""

    def __init__(self, name: str, arrays: Sequence[np.ndarray]):
        self.name = name
        self.arrays = list(arrays)
        self.set_range(0, len(self.arrays))

    def __len__(self) -> int:
        return len(self.arrays)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.i, self.end = start_index, min(end_index, len(self.arrays))

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self.i >= self.end:
            return None
        self.i += 1
        return {self.name: self.arrays[self.i - 1]}


def _stride(n: int, most: int = 4) -> int:
    """The largest divisor of ``n`` not above ``most`` (images per
    calibration pass: onnxruntime keeps every tensor of a pass)."""
    return max(d for d in range(1, min(n, most) + 1) if n % d == 0)


def float_nodes(model, parts: Sequence[str]) -> List[str]:
    """Names of the nodes of ``model`` (ModelProto) kept in float.

    Nodes are found by the scope names the TorchScript exporter writes
    (``/backbone/layer3_2/attn_l/Softmax``, ``/conv_seg/Conv``, ...) and by
    the data flow for the final resize.
    """
    nodes = list(model.graph.node)
    outputs = {o.name for o in model.graph.output}
    names = []
    for n in nodes:
        scope = n.name.rsplit('/', 1)[0]
        keep = False
        if 'attention-norm' in parts and '/attn' in scope and n.op_type in (
                'Softmax', 'ReduceSum', 'Div', 'Mul', 'Add'):
            keep = '/key_' not in scope and not scope.endswith(
                ('/value', '/vert', '/horz'))
        if 'gelu' in parts and scope.endswith('/act') and '/mlp' in scope:
            keep = True
        if 'classifier' in parts and '/conv_seg' in scope:
            keep = True
        if 'final-resize' in parts and n.op_type == 'Resize' and any(
                o in outputs for o in n.output):
            keep = True
        if 'head' in parts and not scope.startswith('/backbone') and (
                n.op_type in ('Conv', 'BatchNormalization', 'Relu',
                              'Resize')):
            keep = True
        if 'stem' in parts and scope.startswith('/backbone/stem'):
            keep = True
        if 'elementwise' in parts and n.op_type in ('Add', 'Mul'):
            keep = True
        if keep:
            names.append(n.name)
    return names


def op_types() -> List[str]:
    """onnxruntime's default op types to quantize, without
    BatchNormalization (no int8 kernel on CPU: it would run as
    dequantize -> BN -> quantize)."""
    from onnxruntime.quantization.registry import (QDQRegistry,
                                                   QLinearOpsRegistry)
    return sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) -
                  {'BatchNormalization'})


def agreement(sess_a, sess_b, inputs: Sequence[np.ndarray]) -> tuple:
    """(argmax pixel agreement, max relative logit error) of two sessions
    on ``inputs``."""
    name_a = sess_a.get_inputs()[0].name
    name_b = sess_b.get_inputs()[0].name
    same = total = 0
    err = 0.0
    for x in inputs:
        a = sess_a.run(None, {name_a: x})[0]
        b = sess_b.run(None, {name_b: x})[0]
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += a.shape[0] * a.shape[2] * a.shape[3]
        err = max(err, float(np.abs(a - b).max() /
                             max(np.abs(a).max(), 1e-12)))
    return same / max(total, 1), err


def quantize_int8(fp32_path: str, out: str,
                  calib: Sequence[np.ndarray],
                  method: str = 'minmax',
                  float_parts: Sequence[str] = DEFAULT_FLOAT_PARTS,
                  per_channel: bool = True,
                  activation_type: str = 'uint8',
                  log: Callable = print) -> dict:
    """Quantize ``fp32_path`` into ``out`` (QDQ, static, calibrated).

    Returns the settings and the agreement with the fp32 model on the
    calibration inputs (argmax per pixel, max relative logit error).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process,
                                          quantize_static)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix='sctnet_int8_') as tmp:
        pre = osp.join(tmp, 'pre.onnx')
        # shape inference + graph optimisation, as onnxruntime recommends
        # before quantizing (folds the exporter's shape arithmetic)
        quant_pre_process(fp32_path, pre, skip_symbolic_shape=True)
        model = onnx.load(pre)
        excluded = float_nodes(model, float_parts)
        name = model.graph.input[0].name
        log(f'int8: calibrating on {len(calib)} image(s), method {method}, '
            f'{len(excluded)} node(s) kept in float '
            f'({", ".join(float_parts) or "none"})', flush=True)
        quantize_static(
            pre,
            out,
            _Reader(name, calib),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=(QuantType.QUInt8 if activation_type == 'uint8'
                             else QuantType.QInt8),
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            op_types_to_quantize=op_types(),
            calibrate_method=getattr(CalibrationMethod,
                                     CALIB_METHODS[method]),
            extra_options=dict(CalibStridedMinMax=_stride(len(calib))))
        agree, err = agreement(ort_session(fp32_path), ort_session(out),
                               calib)
    info = dict(
        calib_images=len(calib),
        calib_method=method,
        float_parts=list(float_parts),
        float_nodes=len(excluded),
        per_channel=per_channel,
        activations=activation_type,
        agreement=agree,
        max_rel_err=err,
        seconds=time.time() - t0)
    log(f'int8 vs fp32 on the calibration images: argmax agreement '
        f'{100 * agree:.2f} % of pixels, max relative logit error '
        f'{err:.2e} ({info["seconds"]:.0f} s)')
    return info
