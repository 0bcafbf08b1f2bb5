"""What a full ImageNet pretraining run costs, estimated from CPU figures.

No GPU is needed: three things are measured on the machine at hand and
scaled with a published GPU figure (``speed/pretrain_cost.py`` prints it):

1. the training-step throughput (forward, backward, AdamW step; fp32, 224x224)
   of the SCTNet classifier of a ``configs/pretrain/`` config and of
   torchvision's ResNet-50, interleaved so that a loaded machine slows both
   alike; their ratio is the relative cost per image;
2. the images per second one CPU core prepares with the config's real
   training pipeline (JPEG decode, RandomResizedCrop, RandAugment,
   RandomErasing) on ImageNet-sized JPEGs -- a figure that carries over to
   the data-loader workers of a GPU node;
3. exact forward FLOPs (``FlopCounterMode``).

The GPU throughput is then bracketed (:func:`estimate_gpu_hours`):
between ResNet-50's published training throughput (a network with fewer
FLOPs is not assumed to train faster per image on a GPU: small layers are
bound by memory traffic) and that figure times the SCTNet/ResNet-50
throughput ratio measured on the CPU (where cost follows FLOPs); either is
capped by what the data loaders deliver (``cores_per_gpu x`` the per-core
figure).
"""
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch
import torchvision
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from ..datasets.synthetic import render_scene
from ..io.config import REPO_ROOT, load_config
from ..io.cpu import cpu_model
from ..io.files import check_output_file, write_json
from .flops import count_flops

__all__ = [
    'RESNET50_GPU_IMG_S', 'IMAGENET_TRAIN', 'IMAGENET_VAL', 'CONFIGS',
    'build_classifier', 'train_step_throughput', 'pipeline_throughput',
    'estimate_gpu_hours', 'measure', 'format_report',
    'estimate_pretraining_cost'
]

#: the pretraining configs measured by default (in this checkout)
CONFIGS = {
    'sctnet-s': osp.join(REPO_ROOT, 'configs/pretrain/sctnet-s_8xb128_in1k.py'),
    'sctnet-b': osp.join(REPO_ROOT, 'configs/pretrain/sctnet-b_8xb128_in1k.py'),
}

#: ResNet-50 v1.5 training throughput, one A100 80GB, mixed precision,
#: batch 256 (NVIDIA DeepLearningExamples, PyTorch ConvNets README, 21.03
#: container): 2470 img/s (TF32: 938; V100 16GB AMP: 1200).
RESNET50_GPU_IMG_S = 2470.0
RESNET50_GPU = 'A100 80GB, AMP (NVIDIA DeepLearningExamples ResNet-50 v1.5)'
IMAGENET_TRAIN = 1281167
IMAGENET_VAL = 50000


def build_classifier(config: str, num_classes: int = 1000):
    """The ``ImageClassifier`` of a pretraining config (random weights)."""
    from mmpretrain.registry import MODELS

    # registers SCTNetClsNeck in MMPretrain's MODELS; MMPretrain is needed
    # for pretraining only, so neither is imported with this module
    from ..pretrain import cls_neck  # noqa: F401
    cfg = load_config(config)
    cfg.model.head.num_classes = num_classes
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _step_fn(model, batch: int, size: int, num_classes: int = 1000):
    """One training step of ``model`` on a random batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, num_classes, (batch, ))
    if hasattr(model, 'head') and hasattr(model, 'data_preprocessor'):
        from mmpretrain.structures import DataSample
        samples = [DataSample().set_gt_label(int(i)) for i in y]

        def loss_fn():
            return sum(model(x, samples, mode='loss').values())
    else:
        ce = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

        def loss_fn():
            return ce(model(x), y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    return step


def train_step_throughput(models: Dict[str, torch.nn.Module],
                          batch: int = 16,
                          size: int = 224,
                          steps: int = 3,
                          rounds: int = 3,
                          progress=print) -> Dict[str, dict]:
    """Images/s of a training step for each model, interleaved.

    Each round times ``steps`` steps of every model one after the other
    (after one untimed warm-up step each); the median over ``rounds`` is
    reported, with the spread. ``img_s`` counts the CPU time of this
    process (``time.process_time``), which other processes on a shared
    machine do not inflate (run it with one thread: idle OpenMP threads
    spin and add CPU time); ``wall_img_s`` the elapsed time.
    """
    fns = {}
    for name, m in models.items():
        m.train()
        fns[name] = _step_fn(m, batch, size)
        fns[name]()  # warm-up (allocations, oneDNN primitives)
    cpu: Dict[str, List[float]] = {n: [] for n in models}
    wall: Dict[str, List[float]] = {n: [] for n in models}
    for r in range(rounds):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                fn()
            c1, t1 = time.process_time(), time.perf_counter()
            cpu[name].append(batch * steps / (c1 - c0))
            wall[name].append(batch * steps / (t1 - t0))
            if progress:
                progress(f'round {r + 1}/{rounds} {name}: '
                         f'{cpu[name][-1]:.2f} img/s of CPU time, '
                         f'{wall[name][-1]:.2f} img/s elapsed')
    return {
        n:
        dict(
            img_s=statistics.median(v),
            min=min(v),
            max=max(v),
            runs=v,
            wall_img_s=statistics.median(wall[n]))
        for n, v in cpu.items()
    }


def pipeline_throughput(config: str,
                        n_images: int = 64,
                        image_hw=(375, 500),
                        work_dir: Optional[str] = None) -> dict:
    """Images/s one process prepares with ``config``'s train pipeline.

    ``n_images`` JPEGs (quality 90) of ImageNet's typical size, street
    scenes from :func:`~mmseg_sctnet.datasets.synthetic.render_scene` with
    pixel noise (about ImageNet's ~110 KB per file), are written to a
    temporary folder and pushed through the pipeline once (first 4
    untimed). ``img_s`` counts this process's CPU time (one core; a
    data-loader worker is one process), ``wall_img_s`` the elapsed time.
    """

    import mmpretrain.datasets  # noqa: F401  (registers the transforms)
    cfg = load_config(config)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        paths = []
        rng = np.random.RandomState(0)
        for i in range(n_images):
            img, _ = render_scene(i, image_hw, ignore_border=0)
            img = np.clip(img + rng.normal(0, 12, img.shape), 0,
                          255).astype(np.uint8)
            p = osp.join(tmp, f'{i:05d}.JPEG')
            cv2.imwrite(p, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            paths.append(p)
        kb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1024
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
        for p in paths[:4]:
            pipeline(dict(img_path=p, gt_label=0))
        t0, c0 = time.perf_counter(), time.process_time()
        for p in paths[4:]:
            pipeline(dict(img_path=p, gt_label=0))
        c1, t1 = time.process_time(), time.perf_counter()
    n = len(paths) - 4
    return dict(
        img_s=n / (c1 - c0),
        wall_img_s=n / (t1 - t0),
        jpeg_kb=kb,
        image_hw=list(image_hw))


def estimate_gpu_hours(rel_cost: float,
                       data_img_s_per_core: float,
                       cores_per_gpu: int = 8,
                       epochs: int = 300,
                       ref_gpu_img_s: float = RESNET50_GPU_IMG_S) -> dict:
    """GPU-hours of ``epochs`` on ImageNet-1k (train + per-epoch val).

    Per-GPU throughput is ``min(compute, data)``: ``compute`` is
    ResNet-50's published throughput times the relative cost, ``data``
    what ``cores_per_gpu`` data-loader cores prepare. Two bounds:

    * optimistic: the relative cost measured on the CPU holds on the GPU;
    * pessimistic: no faster per image than ResNet-50 (relative cost
      capped at 1): on an A100, EfficientNet-B0 trains at 2489 img/s with
      10x fewer FLOPs than ResNet-50 (2470 img/s, same source), because
      small layers are bound by memory traffic, not arithmetic.

    Validation (50k images each epoch) is a forward pass, taken as a third
    of a training step.

    Args:
        rel_cost: SCTNet throughput / ResNet-50 throughput (same CPU).
        data_img_s_per_core: training pipeline images/s of one core.
        cores_per_gpu: data-loader cores available per GPU.
    """
    data = data_img_s_per_core * cores_per_gpu
    out = {}
    for name, rel in (('optimistic', rel_cost), ('pessimistic',
                                                 min(rel_cost, 1.0))):
        compute = ref_gpu_img_s * rel
        img_s = min(compute, data)

        def hours(train_img_s, compute=compute):
            return epochs * (IMAGENET_TRAIN / train_img_s + IMAGENET_VAL /
                             (3 * compute)) / 3600

        out[name] = dict(
            compute_img_s_per_gpu=compute,
            img_s_per_gpu=img_s,
            bound='data' if data < compute else 'compute',
            cores_per_gpu_to_keep_up=compute / data_img_s_per_core,
            gpu_hours=hours(img_s),
            gpu_hours_enough_cores=hours(compute))
    out.update(
        data_img_s_per_gpu=data,
        cores_per_gpu=cores_per_gpu,
        epochs=epochs,
        reference=f'ResNet-50 {ref_gpu_img_s:.0f} img/s on {RESNET50_GPU}')
    return out


def measure(configs: Dict[str, str],
            batch: int = 16,
            steps: int = 3,
            rounds: int = 3,
            pipeline_images: int = 64,
            cores_per_gpu: int = 8,
            epochs: int = 300,
            threads: int = 1,
            progress=print) -> dict:
    """Everything above for ``configs`` (``{name: pretraining config}``),
    with ``threads`` torch threads."""
    torch.set_num_threads(threads)

    models = {n: build_classifier(c) for n, c in configs.items()}
    models['resnet50'] = torchvision.models.resnet50()
    flops = {}
    for n, m in models.items():
        m.eval()
        if hasattr(m, 'head'):
            net = _TensorForward(m)
        else:
            net = m
        flops[n] = count_flops(net, (224, 224), device='cpu')['gflops']
    thr = train_step_throughput(
        models, batch=batch, steps=steps, rounds=rounds, progress=progress)
    first = next(iter(configs.values()))
    pipe = pipeline_throughput(first, n_images=pipeline_images)
    ref = thr['resnet50']['img_s']
    result = dict(
        machine=dict(
            cpu=cpu_model(),
            threads=torch.get_num_threads(),
            batch=batch,
            size=224,
            steps=steps,
            rounds=rounds),
        gflops=flops,
        cpu_train_img_s=thr,
        pipeline=pipe,
        estimates={})
    for n in configs:
        rel = thr[n]['img_s'] / ref
        result['estimates'][n] = dict(
            rel_cost_vs_resnet50=rel,
            **estimate_gpu_hours(rel, pipe['img_s'], cores_per_gpu, epochs))
    return result


class _TensorForward(torch.nn.Module):
    """``model(x, mode='tensor')`` as a plain module (for FLOP counting)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def format_report(res: dict) -> str:
    """The figures of :func:`measure` as text."""
    m, thr, est = res['machine'], res['cpu_train_img_s'], res['estimates']
    lines = [
        m['cpu'], f'CPU training step, fp32, batch {m["batch"]}, 224x224, '
        f'{m["threads"]} thread(s), images per second of CPU time (median '
        f'of {m["rounds"]} interleaved rounds):'
    ]
    for n, t in thr.items():
        lines.append(f'  {n:9s} {t["img_s"]:7.2f} img/s (range '
                     f'{t["min"]:.2f}-{t["max"]:.2f}; elapsed '
                     f'{t["wall_img_s"]:.2f})  {res["gflops"][n]:.2f} '
                     'GFLOPs/img forward')
    pipe = res['pipeline']
    lines.append(f'training pipeline, one core: {pipe["img_s"]:.1f} img/s '
                 f'of CPU time (elapsed {pipe["wall_img_s"]:.1f}; '
                 f'{pipe["image_hw"][0]}x{pipe["image_hw"][1]} JPEG, '
                 f'{pipe["jpeg_kb"]:.0f} KB)')
    for n, e in est.items():
        lines.append(f'{n}: {e["rel_cost_vs_resnet50"]:.2f} x ResNet-50 '
                     'throughput on this CPU; data loaders '
                     f'{e["data_img_s_per_gpu"]:.0f} img/s per GPU '
                     f'({e["cores_per_gpu"]} cores)')
        for k in ('optimistic', 'pessimistic'):
            b = e[k]
            lines.append(
                f'  {k:11s}: compute {b["compute_img_s_per_gpu"]:.0f} img/s '
                f'per GPU (needs {b["cores_per_gpu_to_keep_up"]:.0f} loader '
                f'cores) -> {b["img_s_per_gpu"]:.0f} img/s ({b["bound"]}-'
                f'bound) -> {b["gpu_hours"]:.0f} GPU-hours for '
                f'{e["epochs"]} epochs ({b["gpu_hours_enough_cores"]:.0f} '
                'with enough loader cores)')
        lines.append(f'  reference: {e["reference"]}')
    return '\n'.join(lines)


def estimate_pretraining_cost(configs: Optional[Dict[str, str]] = None,
                              json: Optional[str] = None,
                              overwrite: bool = False,
                              **kwargs) -> dict:
    """:func:`measure` (``kwargs``), print :func:`format_report`, and write
    the figures to ``json`` (an existing file only with ``overwrite``)."""
    if json:
        check_output_file(json, overwrite=overwrite)
    res = measure(configs or CONFIGS, **kwargs)
    print(format_report(res))
    if json:
        write_json(json, res, overwrite=overwrite)
    return res
