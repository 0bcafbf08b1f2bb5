"""Running an exported file: the onnxruntime session, the file's
interface, and fitting images to a static input size.

Shared by the export check (:mod:`.onnx_export`), int8 calibration
(:mod:`.quantize`), the ONNX segmentor of ``tools/test.py``
(:mod:`.ort_segmentor`) and the benchmarks.
"""
import math
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..io.errors import OnnxModelError

__all__ = [
    'rel_error', 'fit_to_shape', 'unfit_logits', 'ort_session', 'onnx_io',
    'check_onnx'
]


def rel_error(a, b) -> float:
    """max |a - b| / max |a| (float64)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


def fit_to_shape(x: torch.Tensor, shape: Tuple[int, int]
                 ) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Fit a normalised batch ``[N, 3, h, w]`` into a static ``shape``.

    Keep-ratio bilinear resize so that the image fits ``shape``, then zero
    padding (the normalised mean colour, as MMSegmentation's test-time
    padding) at the bottom/right. Returns the fitted batch and the size of
    its valid (unpadded) region, for :func:`unfit_logits`. A batch already
    of ``shape`` is returned unchanged.
    """
    h, w = x.shape[2:]
    H, W = shape
    if (h, w) == (H, W):
        return x, (H, W)
    s = min(H / h, W / w)
    vh, vw = min(H, max(1, round(h * s))), min(W, max(1, round(w * s)))
    y = F.interpolate(x, size=(vh, vw), mode='bilinear', align_corners=False)
    if (vh, vw) != (H, W):
        y = F.pad(y, (0, W - vw, 0, H - vh))
    return y, (vh, vw)


def unfit_logits(logits: torch.Tensor, valid: Tuple[int, int],
                 fitted: Tuple[int, int], size: Tuple[int, int],
                 align_corners: bool = False) -> torch.Tensor:
    """Undo :func:`fit_to_shape` on logits.

    ``logits`` come from an input of size ``fitted`` whose top-left
    ``valid`` region held the image (the logits may be at the input
    resolution or at the head's 1/8); the valid region is cropped and
    resized bilinearly to ``size``.
    """
    hl, wl = logits.shape[2:]
    ch = min(hl, math.ceil(valid[0] * hl / fitted[0]))
    cw = min(wl, math.ceil(valid[1] * wl / fitted[1]))
    out = logits[:, :, :ch, :cw]
    if tuple(out.shape[2:]) == tuple(size):
        return out
    return F.interpolate(
        out, size=size, mode='bilinear', align_corners=align_corners)


def ort_session(path: str, threads: Optional[int] = None,
                spinning: bool = True,
                profile_prefix: Optional[str] = None):
    """A CPU onnxruntime session; a bad file is an :class:`OnnxModelError`.

    ``threads``: intra-op threads (onnxruntime's default: all cores).
    ``spinning=False``: worker threads sleep between runs instead of
    busy-waiting (for timing next to other backends in one process).
    ``profile_prefix``: record onnxruntime's profile (written by
    ``session.end_profiling()`` to a file starting with this prefix).
    """
    import onnxruntime as ort
    if not osp.isfile(path):
        raise OnnxModelError(f'ONNX file not found: {path} (resolved to '
                             f'{osp.abspath(path)})')
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    if not spinning:
        opts.add_session_config_entry('session.intra_op.allow_spinning',
                                      '0')
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(
            path, opts, providers=['CPUExecutionProvider'])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph
        raise OnnxModelError(
            f'{path} is not an ONNX model onnxruntime can load '
            f'({type(e).__name__}: {str(e).splitlines()[0][:200]}); export '
            'one with tools/export_onnx.py') from None


def onnx_io(path: str) -> dict:
    """Input/output names and shapes of an ONNX file (no session needed).

    Dimensions are ints, or None where dynamic. Raises
    :class:`OnnxModelError` for a missing or unparsable file.
    """
    import onnx
    if not osp.isfile(path):
        raise OnnxModelError(f'ONNX file not found: {path} (resolved to '
                             f'{osp.abspath(path)})')
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise OnnxModelError(
            f'{path} is not an ONNX model ({type(e).__name__} while parsing '
            f'its {osp.getsize(path)} bytes: cut short, damaged, or another '
            'format such as a renamed .pth); pass a complete file written '
            'by tools/export_onnx.py') from None
    if not model.graph.input or not model.graph.output:
        raise OnnxModelError(f'{path} is not an ONNX model (no graph inputs '
                             'or outputs); pass a file written by '
                             'tools/export_onnx.py')

    def dims(v):
        return [
            d.dim_value if d.HasField('dim_value') else None
            for d in v.type.tensor_type.shape.dim
        ]

    init_names = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in init_names]
    elem = inputs[0].type.tensor_type.elem_type
    return dict(
        input=inputs[0].name,
        input_shape=dims(inputs[0]),
        output=model.graph.output[0].name,
        output_shape=dims(model.graph.output[0]),
        int8=any(n.op_type in ('QuantizeLinear', 'QLinearConv')
                 for n in model.graph.node),
        elem_type=elem,
        # what to feed it: fp16 for a --fp16 export, fp32 otherwise
        feed_dtype=np.float16 if elem == onnx.TensorProto.FLOAT16 else
        np.float32)


def check_onnx(path: str, reference: Callable, shapes: Sequence[Tuple],
               fp16: bool = False, seed: int = 0) -> List[tuple]:
    """Run ``path`` in onnxruntime and compare with ``reference`` (fp32).

    Returns a list of ``(shape, max relative error)``.
    """
    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        x = torch.randn(1, 3, *shape, generator=g)
        with torch.inference_mode():
            ref = reference(x).float().numpy()
        feed = x.numpy().astype(np.float16 if fp16 else np.float32)
        got = sess.run(None, {name: feed})[0]
        if got.shape != ref.shape:
            raise RuntimeError(f'onnxruntime output shape {got.shape} != '
                               f'PyTorch {ref.shape} at input {shape}')
        out.append((tuple(shape), rel_error(ref, got)))
    return out
