"""mIoU of one trained model by backend, per class, side by side (the body
of ``speed/compare_accuracy.py``; see docs/deploy.md).

The config's test split is read by its own dataset class through its test
pipeline and ``data_preprocessor``; every backend predicts every image and
MMSegmentation's ``IoUMetric`` (the config's ``test_evaluator`` settings)
scores it, exactly as ``tools/test.py`` does for one backend. Backends:

* ``pth``: the checkpoint in PyTorch, eager fp32 (``tools/test.py CKPT``);
* ``deploy``: ``switch_to_deploy`` fp32;
* ``bf16`` / ``bf16-weights`` / ``bf16-compile``: deploy under autocast /
  with bf16 weights / with bf16 weights through ``torch.compile`` with
  freezing (CPUs with AVX512-BF16/AMX only);
* ``ort-fp32``: the fp32 ONNX export in onnxruntime;
* ``ort-int8[-NAME]``: int8 exports (``--int8 NAME=METHOD:PARTS``), e.g.
  ``minmax:attention-norm,gelu,classifier,final-resize``.

Besides mIoU and per-class IoU, each backend's pixel agreement with
``pth`` (argmax) is reported.
"""
import copy
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.evaluation import IoUMetric
from mmseg.registry import DATASETS, MODELS

from ..deploy import quantize as Q
from ..deploy.dtype import LowPrecision, check_dtype
from ..deploy.model import (SegmentorWithResize, compile_for_inference,
                            load_inference_model)
from ..deploy.onnx_export import export_onnx
from ..deploy.ort_segmentor import ORTSegmentor
from ..io.config import load_config
from ..io.errors import DeployUsageError, UserError
from ..models.deploy_form import switch_to_deploy
from .harness import write_json

#: the torch reduced-precision backends ``dtypes`` can name
DTYPE_BACKENDS = ('bf16', 'bf16-weights', 'bf16-compile')


def _parse_int8(specs: Sequence[str]) -> Dict[str, tuple]:
    """``NAME=METHOD:PART,PART`` -> {name: (method, parts)}."""
    out = {}
    for spec in specs:
        name, _, rest = spec.partition('=')
        method, _, parts = rest.partition(':')
        parts = [] if parts in ('', 'none') else parts.split(',')
        if not name or method not in Q.CALIB_METHODS or any(
                p not in Q.FLOAT_PARTS for p in parts):
            raise DeployUsageError(
                f'--int8 {spec!r}: expected NAME=METHOD:PARTS with METHOD in '
                f'{list(Q.CALIB_METHODS)} and PARTS from '
                f'{list(Q.FLOAT_PARTS)} or none')
        out[f'ort-int8-{name}'] = (method, parts)
    return out


def compare_accuracy(config: str,
                     checkpoint: str,
                     shape: Optional[Sequence[int]] = None,
                     int8: Sequence[str] = (),
                     calib_num: int = 32,
                     dtypes: Sequence[str] = ('bf16', 'bf16-weights'),
                     out_dir: Optional[str] = None,
                     max_images: Optional[int] = None,
                     overwrite: bool = False,
                     log: Callable = print) -> dict:
    """Export, evaluate every backend, write ``accuracy.md`` / ``.json``.

    Args:
        shape: export (and calibration) size; default: the size of the
            first test image after the test pipeline.
        int8: int8 variants ``NAME=METHOD:PARTS`` (default: one, the
            default settings of ``tools/export_onnx.py --int8``).
        dtypes: torch reduced-precision backends to add (skipped with the
            reason where the CPU cannot run them).
    """
    unknown = [d for d in dtypes if d not in DTYPE_BACKENDS]
    if unknown:
        raise DeployUsageError(f'--dtypes {",".join(unknown)}: choose from '
                               f'{",".join(DTYPE_BACKENDS)}')
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    variants = _parse_int8(int8) if int8 else {
        'ort-int8': ('minmax', list(Q.DEFAULT_FLOAT_PARTS))
    }
    out_dir = out_dir or osp.join(
        'work_dirs', 'accuracy',
        osp.splitext(osp.basename(config))[0])
    md = osp.join(out_dir, 'accuracy.md')
    js = osp.join(out_dir, 'accuracy.json')
    for f in (md, js):
        if osp.exists(f) and not overwrite:
            raise DeployUsageError(f'{f} exists; pass --overwrite or another '
                                   '--out-dir')
    os.makedirs(out_dir, exist_ok=True)
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset = DATASETS.build(ds_cfg)
    if len(dataset) == 0:
        raise DeployUsageError(f'the test split of {config} holds no images')
    pre = MODELS.build(cfg.model.data_preprocessor).eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    if shape is None:
        first = pre(pseudo_collate([dataset[0]]), False)['inputs']
        shape = tuple(first.shape[2:])
    shape = tuple(shape)

    # --- backends
    eager = load_inference_model(config, checkpoint)
    backends: Dict[str, Callable] = {}
    skipped: Dict[str, str] = {}
    files: Dict[str, dict] = {}

    def torch_backend(module, seg):
        def run(inputs, samples):
            with torch.inference_mode():
                return seg.postprocess_result(module(inputs).float(),
                                              samples)
        return run

    backends['pth'] = torch_backend(SegmentorWithResize(eager), eager)
    deployed = switch_to_deploy(copy.deepcopy(eager))
    backends['deploy'] = torch_backend(SegmentorWithResize(deployed),
                                       deployed)
    for name in dtypes:
        try:
            check_dtype(name.split('-')[0], 'cpu')
        except UserError as e:
            skipped[name] = str(e)
            continue
        mode = 'autocast' if name == 'bf16' else 'weights'
        module = LowPrecision(
            SegmentorWithResize(copy.deepcopy(deployed)), 'bf16', mode)
        if name.endswith('-compile'):
            module = compile_for_inference(module)
        backends[name] = torch_backend(module, deployed)
    stem = osp.join(out_dir, f'model_{shape[0]}x{shape[1]}')
    exports = {'ort-fp32': dict(out=stem + '_fp32.onnx')}
    for name, (method, parts) in variants.items():
        exports[name] = dict(
            out=f'{stem}_{name[4:]}.onnx', int8=True, calib_num=calib_num,
            calib_method=method, float_parts=parts)
    head = cfg.model.decode_head
    for name, kw in exports.items():
        if osp.exists(kw['out']):
            log(f'{name}: reusing {kw["out"]}')
            info = dict(onnx=kw['out'])
        else:
            info = export_onnx(config, checkpoint, shape, log=log, **kw)
        info['size_mb'] = osp.getsize(kw['out']) / 2**20
        files[name] = {k: v for k, v in info.items() if k != 'checks'}
        seg = ORTSegmentor(
            kw['out'], num_classes=head.num_classes,
            align_corners=bool(head.get('align_corners', False)),
            data_preprocessor=cfg.model.data_preprocessor)
        backends[name] = seg.predict

    # --- evaluation
    ev = {k: v for k, v in cfg.test_evaluator.items() if k != 'type'}
    metrics = {}
    for name in backends:
        metrics[name] = IoUMetric(**ev)
        metrics[name].dataset_meta = dataset.metainfo
    same = {name: 0 for name in backends}
    total = 0
    seconds = {name: 0.0 for name in backends}
    log(f'evaluating {list(backends)} on {n} test images of {config} '
        f'(export/calibration size {shape[0]}x{shape[1]})')
    for i in range(n):
        data = pre(pseudo_collate([dataset[i]]), False)
        ref = None
        for name, run in backends.items():
            samples = copy.deepcopy(data['data_samples'])
            t0 = time.perf_counter()
            preds = run(data['inputs'], samples)
            seconds[name] += time.perf_counter() - t0
            pred = preds[0].pred_sem_seg.data
            if ref is None:
                ref = pred
                total += pred.numel()
            same[name] += int((pred == ref).sum())
            metrics[name].process({}, [p.to_dict() for p in preds])
        if (i + 1) % 10 == 0 or i + 1 == n:
            log(f'  {i + 1}/{n} images', flush=True)
    classes = list(dataset.metainfo['classes'])
    rows = {}
    for name, m in metrics.items():
        areas = [sum(x) for x in zip(*m.results)]
        ret = m.total_area_to_metrics(*areas, ['mIoU'], m.nan_to_num, m.beta)
        iou = [None if np.isnan(float(v)) else round(float(v) * 100, 2)
               for v in ret['IoU']]
        valid = [v for v in iou if v is not None]
        rows[name] = dict(
            mIoU=round(float(np.mean(valid)), 2) if valid else None,
            aAcc=round(float(ret['aAcc']) * 100, 2),
            per_class=dict(zip(classes, iou)),
            agreement_with_pth=same[name] / max(total, 1),
            seconds_per_image=seconds[name] / n,
            **files.get(name, {}))
    ref = rows['pth']['mIoU']
    for r in rows.values():
        r['delta_mIoU'] = round(r['mIoU'] - ref, 2)
    names = list(rows)
    lines = ['| class | ' + ' | '.join(names) + ' |',
             '|---|' + '---:|' * len(names)]
    for c in classes:
        lines.append(f'| {c} | ' + ' | '.join(
            '-' if rows[k]['per_class'][c] is None else
            f'{rows[k]["per_class"][c]:.2f}' for k in names) + ' |')
    lines.append('| **mIoU** | ' + ' | '.join(
        f'**{rows[k]["mIoU"]:.2f}**' for k in names) + ' |')
    lines.append('| delta vs pth | ' + ' | '.join(
        f'{rows[k]["delta_mIoU"]:+.2f}' for k in names) + ' |')
    lines.append('| pixels = pth | ' + ' | '.join(
        f'{100 * rows[k]["agreement_with_pth"]:.2f} %' for k in names) +
        ' |')
    table = '\n'.join(lines)
    text = (f'{config}, {checkpoint}: {n} test images, export size '
            f'{shape[0]}x{shape[1]}, calibration {calib_num} train images\n\n'
            + table + '\n' + ''.join(f'\nskipped {k}: {v}'
                                     for k, v in skipped.items()))
    log('\n' + text)
    with open(md, 'w') as f:
        f.write(text + '\n')
    result = dict(config=config, checkpoint=checkpoint, images=n,
                  shape=list(shape), calib_num=calib_num, backends=rows,
                  skipped=skipped)
    write_json(js, result, overwrite=True)
    log(f'wrote {md}, {js}')
    return result
