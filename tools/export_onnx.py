#!/usr/bin/env python
"""Export the deployed SCTNet student to ONNX and check it in onnxruntime.

    python tools/export_onnx.py CONFIG CKPT --shape H W
        [--dynamic] [--fp16] [--no-resize] [--opset 17] [--out FILE]

CKPT is a training checkpoint (teacher tensors ignored) or a deploy
checkpoint from ``tools/deploy.py``. Only the deployed student is exported
(``switch_to_deploy``: no auxiliary head, no teacher, BatchNorms folded):
``input`` ``[N, 3, H, W]`` (normalised image, as the model's
data_preprocessor produces it) -> ``logits`` ``[N, classes, H, W]``
(upsampled bilinearly to the input size; ``--no-resize`` keeps the head's
1/8 resolution). ``--dynamic`` makes batch, height and width dynamic (the
graph stays exact for any input of at least 32x32).

The file is then run in onnxruntime (CPU) on a random input and compared
with the eager PyTorch model: the maximum relative error is printed, and
the tool fails when it exceeds 1e-4 (fp32) or 2e-2 (``--fp16``; weights
and activations in half precision). With ``--dynamic`` a second, odd input
size is checked as well.

The exporter is torch's TorchScript-based one (``dynamo=False``): it needs
nothing beyond torch and onnx. TensorRT FP16 engine (see docs/deploy.md)::

    trtexec --onnx=FILE --fp16 --saveEngine=FILE.engine
"""
import argparse
import os
import os.path as osp
import warnings

import _bootstrap  # noqa: F401

import mmseg_sctnet  # noqa: F401

TOL_FP32 = 1e-4
TOL_FP16 = 2e-2


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Export the deployed SCTNet to ONNX (checked with '
        'onnxruntime)')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='training or deploy checkpoint')
    p.add_argument('--shape', type=int, nargs=2, required=True,
                   metavar=('H', 'W'), help='input height and width')
    p.add_argument('--dynamic', action='store_true', help='dynamic batch, '
                   'height and width')
    p.add_argument('--fp16', action='store_true', help='export in half '
                   'precision (for TensorRT prefer fp32 ONNX + trtexec --fp16)')
    p.add_argument('--no-resize', action='store_true', help='output logits '
                   'at 1/8 instead of the input size')
    p.add_argument('--opset', type=int, default=17)
    p.add_argument('--out', help='output file (default work_dirs/onnx/'
                   '<config>_<H>x<W>[_dynamic][_fp16].onnx); never '
                   'overwritten')
    p.add_argument('--no-check', action='store_true', help='skip the '
                   'onnxruntime check')
    args = p.parse_args(argv)
    if min(args.shape) < 32:
        p.error(f'--shape {args.shape}: height and width must be >= 32')
    return args


def default_out(args) -> str:
    stem = osp.splitext(osp.basename(args.config))[0]
    tag = f'{args.shape[0]}x{args.shape[1]}'
    tag += '_dynamic' if args.dynamic else ''
    tag += '_fp16' if args.fp16 else ''
    return osp.join('work_dirs', 'onnx', f'{stem}_{tag}.onnx')


def rel_error(a, b) -> float:
    import numpy as np
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


def check_onnx(path, eager, shapes, fp16, seed=0) -> list:
    """Run ``path`` in onnxruntime and compare with ``eager`` (fp32).

    Returns a list of ``(shape, max relative error)``.
    """
    import numpy as np
    import onnxruntime as ort
    import torch
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = sess.get_inputs()[0].name
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        x = torch.randn(1, 3, *shape, generator=g)
        with torch.inference_mode():
            ref = eager(x).float().numpy()
        feed = x.numpy().astype(np.float16 if fp16 else np.float32)
        got = sess.run(None, {name: feed})[0]
        if got.shape != ref.shape:
            raise SystemExit(f'error: onnxruntime output shape {got.shape} '
                             f'!= PyTorch {ref.shape} at input {shape}')
        out.append((tuple(shape), rel_error(ref, got)))
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from mmseg_sctnet.deploy import (PreNormConv2d, SegmentorWithResize,
                                     load_inference_model, switch_to_deploy)
    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint)):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} file not found: {path}')
    out = args.out or default_out(args)
    if osp.exists(out):
        raise SystemExit(f'error: {out} exists; pass another --out (files '
                         'are never overwritten)')
    try:
        eager_or_deployed = load_inference_model(args.config,
                                                 args.checkpoint)
    except (KeyError, ValueError, RuntimeError) as e:
        raise SystemExit(f'error: cannot load {args.checkpoint} for '
                         f'{args.config}: {e}')
    from mmseg_sctnet.deploy import is_deployed
    if is_deployed(eager_or_deployed):
        eager = None  # a deploy checkpoint: its own output is the reference
        model = eager_or_deployed
    else:
        import copy
        eager = SegmentorWithResize(eager_or_deployed,
                                    resize=not args.no_resize).eval()
        model = switch_to_deploy(
            copy.deepcopy(eager_or_deployed), channels_last=False)
    if args.dynamic:  # exact bias path for every input size
        for m in model.modules():
            if isinstance(m, PreNormConv2d):
                m.general_path = True
    model = model.to(memory_format=torch.contiguous_format)
    wrapped = SegmentorWithResize(model, resize=not args.no_resize).eval()
    reference = eager if eager is not None else SegmentorWithResize(
        copy_module(model), resize=not args.no_resize).eval()
    dummy = torch.randn(1, 3, *args.shape)
    export = wrapped
    if args.fp16:
        export = copy_module(wrapped).half()
        dummy = dummy.half()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    dynamic_axes = None
    if args.dynamic:
        dynamic_axes = {
            'input': {0: 'batch', 2: 'height', 3: 'width'},
            'logits': {0: 'batch', 2: 'out_height', 3: 'out_width'},
        }
    with warnings.catch_warnings():
        # the Python-side size test of PreNormConv2d is constant in the
        # graph by design (see its docstring)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                export, (dummy, ),
                out,
                dynamo=False,
                opset_version=args.opset,
                input_names=['input'],
                output_names=['logits'],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True)
    import onnx
    onnx.checker.check_model(out)
    size_mb = osp.getsize(out) / 2**20
    print(f'wrote {out} ({size_mb:.1f} MiB, opset {args.opset}, '
          f'{"fp16" if args.fp16 else "fp32"}, '
          f'{"dynamic" if args.dynamic else "static"} shape, output '
          f'{"1/8" if args.no_resize else "input size"})')
    result = dict(onnx=out, checks=[])
    if not args.no_check:
        shapes = [tuple(args.shape)]
        if args.dynamic:
            shapes.append((args.shape[0] // 2 + 17, args.shape[1] // 2 + 31))
        tol = TOL_FP16 if args.fp16 else TOL_FP32
        against = 'PyTorch eager' if eager is not None else (
            'PyTorch (deploy checkpoint)')
        checks = check_onnx(out, reference, shapes, args.fp16)
        ok = True
        for shape, err in checks:
            good = err < tol
            ok &= good
            print(f'onnxruntime vs {against} at 1x3x{shape[0]}x'
                  f'{shape[1]}: max relative error {err:.2e} '
                  f'({"OK" if good else "FAIL"}, tolerance {tol:g})')
        result['checks'] = checks
        if not ok:
            raise SystemExit('error: onnxruntime output differs from '
                             'PyTorch beyond the tolerance')
    shp = f'1x3x{args.shape[0]}x{args.shape[1]}'
    trt = f'trtexec --onnx={out} --fp16 --saveEngine={osp.splitext(out)[0]}.engine'
    if args.dynamic:
        h, w = args.shape
        trt += (f' --minShapes=input:1x3x{max(32, h // 4)}x{max(32, w // 4)}'
                f' --optShapes=input:{shp} --maxShapes=input:1x3x{2 * h}x'
                f'{2 * w}')
    print(f'TensorRT FP16: {trt}')
    result['trtexec'] = trt
    return result


def copy_module(m):
    import copy
    return copy.deepcopy(m)


if __name__ == '__main__':
    main()
