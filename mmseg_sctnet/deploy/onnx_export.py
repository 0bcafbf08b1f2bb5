"""ONNX export of the deployed student, its onnxruntime check, and int8.

:func:`export_onnx` is ``tools/export_onnx.py``: the deployed student
(``switch_to_deploy``: no auxiliary head, no teacher, BatchNorms folded)
as ``input [N, 3, H, W]`` (normalised image, as the config's
``data_preprocessor`` produces it) -> ``logits [N, classes, H, W]``
(bilinear upsampling to the input size included unless ``no_resize``),
checked in onnxruntime against the eager PyTorch model. With ``int8`` the
fp32 graph is then quantized statically (:mod:`.quantize`), calibrated on
images of the config's train split.

The exporter is torch's TorchScript-based one (``dynamo=False``): it needs
nothing beyond torch and onnx.
"""
import copy
import os
import os.path as osp
import tempfile
import warnings
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from ..io.errors import DeployUsageError, UserError
from ..models.deploy_form import is_deployed, switch_to_deploy
from ..models.layers.fold import PreNormConv2d
from . import quantize as Q
from .model import SegmentorWithResize, load_inference_model
from .onnx_runtime import check_onnx

TOL_FP32 = 1e-4
TOL_FP16 = 2e-2
#: the int8 model must agree with fp32 on at least this share of the
#: calibration pixels (argmax), or the export is refused as broken
MIN_INT8_AGREEMENT = 0.9


def default_out(config: str, shape: Sequence[int], dynamic: bool = False,
                fp16: bool = False, int8: bool = False) -> str:
    """``work_dirs/onnx/<config>_<H>x<W>[_dynamic][_fp16|_int8].onnx``."""
    stem = osp.splitext(osp.basename(config))[0]
    tag = f'{shape[0]}x{shape[1]}'
    tag += '_dynamic' if dynamic else ''
    tag += '_fp16' if fp16 else ''
    tag += '_int8' if int8 else ''
    return osp.join('work_dirs', 'onnx', f'{stem}_{tag}.onnx')


def exportable(segmentor: nn.Module, resize: bool = True) -> nn.Module:
    """The module written to ONNX: deployed, NCHW, ``img -> logits``.

    The pre-norm folds (:class:`PreNormConv2d`) take their general path,
    ``y + (conv(1, taps) - sum(taps))``, in every export, static or
    dynamic: it is exact for every size (a dynamic graph needs that: the
    size test is constant in a traced graph), and in a static-shape file
    its bias maps depend on constants only, so onnxruntime folds them at
    session start into one ``Add`` per conv. The border path's in-place
    slice additions, fastest in PyTorch, become 8 ``ScatterND`` nodes per
    conv in ONNX: 6.8 ms per SCTNet-B 512x1024 forward on 2 threads, 3.4 %
    of onnxruntime's fp32 and 7.4 % of its int8 kernel time
    (``speed/profile_onnx.py``; docs/deploy.md, section 4).
    """
    model = segmentor
    if not is_deployed(model):
        model = switch_to_deploy(copy.deepcopy(model), channels_last=False)
    else:
        model = copy.deepcopy(model)   # the caller's module stays as it is
    for m in model.modules():
        if isinstance(m, PreNormConv2d):
            m.general_path = True
    model = model.to(memory_format=torch.contiguous_format)
    return SegmentorWithResize(model, resize=resize).eval()


def write_onnx(module: nn.Module, dummy: torch.Tensor, out: str,
               opset: int = 17, dynamic: bool = False) -> None:
    """``torch.onnx.export`` (TorchScript exporter) + ``onnx.checker``."""
    import onnx
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            'input': {0: 'batch', 2: 'height', 3: 'width'},
            'logits': {0: 'batch', 2: 'out_height', 3: 'out_width'},
        }
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with warnings.catch_warnings():
        # the Python-side size test of PreNormConv2d is constant in the
        # graph by design (see its docstring)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                module, (dummy, ),
                out,
                dynamo=False,
                opset_version=opset,
                input_names=['input'],
                output_names=['logits'],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True)
    onnx.checker.check_model(out)


def trtexec_command(out: str, shape: Sequence[int], dynamic: bool,
                    int8: bool = False) -> str:
    """The TensorRT engine build for an exported file."""
    engine = osp.splitext(out)[0] + '.engine'
    cmd = f'trtexec --onnx={out} --saveEngine={engine}'
    # a QDQ file carries its own scales: --int8 (with --fp16 for the
    # layers left in float); an fp32 file: TensorRT picks fp16 per layer
    cmd += ' --int8 --fp16' if int8 else ' --fp16'
    if dynamic:
        h, w = shape
        cmd += (f' --minShapes=input:1x3x{max(32, h // 4)}x{max(32, w // 4)}'
                f' --optShapes=input:1x3x{h}x{w} --maxShapes=input:1x3x'
                f'{2 * h}x{2 * w}')
    return cmd


def _load(config: str, checkpoint: str) -> nn.Module:
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not osp.isfile(path):
            raise DeployUsageError(f'{what} file not found: {path} (resolved '
                                   f'to {osp.abspath(path)})')
    try:
        return load_inference_model(config, checkpoint)
    except UserError:  # already names the file and the fix
        raise
    except (KeyError, ValueError, RuntimeError) as e:
        raise DeployUsageError(f'cannot load {checkpoint} for {config}: '
                               f'{e}') from None


def export_onnx(config: str,
                checkpoint: str,
                shape: Sequence[int],
                dynamic: bool = False,
                fp16: bool = False,
                no_resize: bool = False,
                opset: int = 17,
                out: Optional[str] = None,
                no_check: bool = False,
                int8: bool = False,
                calib_num: int = 32,
                calib_method: str = 'minmax',
                float_parts: Optional[Sequence[str]] = None,
                calib_seed: int = 0,
                log: Callable = print) -> dict:
    """Export (and check) the deployed student; see the module docstring.

    Returns ``dict(onnx=path, checks=[(shape, rel err)], trtexec=cmd,
    size_mb=..., [int8=dict(...)])``. Existing files are never
    overwritten. With ``int8`` a calibration set that cannot be read is
    refused before anything is exported.
    """
    if min(shape) < 32:
        raise DeployUsageError(f'--shape {list(shape)}: height and width '
                               'must be >= 32')
    if int8 and fp16:
        raise DeployUsageError('--int8 and --fp16 exclude each other (int8 '
                               'quantizes the fp32 graph)')
    if int8 and calib_num < 1:
        raise DeployUsageError(f'--calib-num {calib_num}: at least 1 image')
    if float_parts is None:
        float_parts = Q.DEFAULT_FLOAT_PARTS
    bad = [p for p in float_parts if p not in Q.FLOAT_PARTS]
    if bad:
        raise DeployUsageError(f'--float-parts: unknown {bad}; choose from '
                               f'{", ".join(Q.FLOAT_PARTS)} (or none)')
    if calib_method not in Q.CALIB_METHODS:
        raise DeployUsageError(f'--calib-method {calib_method!r}: one of '
                               f'{", ".join(Q.CALIB_METHODS)}')
    out = out or default_out(config, shape, dynamic, fp16, int8)
    if osp.exists(out):
        raise DeployUsageError(f'{out} exists; pass another --out (files '
                               'are never overwritten)')
    calib = None
    if int8:  # read the calibration set first: cheap to refuse early
        if not osp.isfile(config):
            raise DeployUsageError(f'config file not found: {config}')
        calib = Q.calibration_inputs(config, calib_num, shape,
                                     seed=calib_seed, log=log)
    loaded = _load(config, checkpoint)
    resize = not no_resize
    if is_deployed(loaded):
        eager = None  # a deploy checkpoint: its own output is the reference
    else:
        eager = SegmentorWithResize(loaded, resize=resize).eval()
    wrapped = exportable(loaded, resize)
    reference = eager if eager is not None else SegmentorWithResize(
        copy.deepcopy(wrapped.segmentor), resize=resize).eval()
    dummy = torch.randn(1, 3, *shape)
    export = wrapped
    if fp16:
        export = copy.deepcopy(wrapped).half()
        dummy = dummy.half()
    result = dict(onnx=out, checks=[])
    with tempfile.TemporaryDirectory(prefix='sctnet_onnx_') as tmp:
        fp32_path = osp.join(tmp, 'fp32.onnx') if int8 else out
        write_onnx(export, dummy, fp32_path, opset, dynamic)
        precision = 'fp16' if fp16 else 'fp32'
        if not no_check:
            shapes = [tuple(shape)]
            if dynamic:
                shapes.append((shape[0] // 2 + 17, shape[1] // 2 + 31))
            tol = TOL_FP16 if fp16 else TOL_FP32
            against = 'PyTorch eager' if eager is not None else (
                'PyTorch (deploy checkpoint)')
            checks = check_onnx(fp32_path, reference, shapes, fp16)
            ok = True
            for shp, err in checks:
                good = err < tol
                ok &= good
                log(f'onnxruntime {precision} vs {against} at 1x3x{shp[0]}x'
                    f'{shp[1]}: max relative error {err:.2e} '
                    f'({"OK" if good else "FAIL"}, tolerance {tol:g})')
            result['checks'] = checks
            if not ok:
                if fp32_path == out:
                    os.remove(out)  # our own output, written just now
                raise RuntimeError('onnxruntime output differs from PyTorch '
                                   'beyond the tolerance')
        if int8:
            info = Q.quantize_int8(
                fp32_path, out, calib, method=calib_method,
                float_parts=float_parts, log=log)
            precision = 'int8'
            result['int8'] = info
            if info['agreement'] < MIN_INT8_AGREEMENT:
                os.remove(out)
                raise RuntimeError(
                    f'the int8 model agrees with fp32 on only '
                    f'{100 * info["agreement"]:.1f} % of the calibration '
                    'pixels; try --calib-method percentile or more '
                    '--float-parts')
    size_mb = osp.getsize(out) / 2**20
    log(f'wrote {out} ({size_mb:.1f} MiB, opset {opset}, {precision}, '
        f'{"dynamic" if dynamic else "static"} shape, output '
        f'{"1/8" if no_resize else "input size"})')
    trt = trtexec_command(out, shape, dynamic, int8)
    log(f'TensorRT: {trt}')
    result.update(trtexec=trt, size_mb=size_mb, precision=precision)
    return result
