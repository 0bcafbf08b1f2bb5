"""What a training iteration costs, and where SIAM's share goes
(``speed/train_cost.py``).

One process, one input batch, every variant timed in interleaved rounds
(A B C ... A B C ...: a change of background load hits every variant
alike), the median of the rounds reported:

* ``student``: the student alone (``model.use_siam=False``): forward, the
  CE losses, backward, AdamW step (``OptimWrapper.update_params``, what
  MMEngine's train loop runs);
* ``student+siam``: the same with SIAM (the frozen teacher's forward, BFA,
  SDHA, the four alignment terms);
* ``teacher forward``: the frozen teacher alone (``teacher_forward``, no
  grad), part of the above;
* ``alignment``: the SIAM head given the backbone features and the
  teacher's outputs (projections, SDHA through the teacher's fusion and
  classifier, the four CWD terms) with its backward;
* with ``--amp``: the two training steps again under ``--amp``'s optim
  wrapper (bf16 autocast on a CPU with native bf16, fp16 with loss scaling
  on a CUDA GPU; refused elsewhere).

Weights are random (timing does not depend on their values); the teacher
is the config's architecture with random weights.
"""
import copy
import statistics
import time
from typing import Dict, Optional, Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ..engine.amp import amp_optim_wrapper
from ..io.config import load_config, replace_sync_norm, resolve_config
from ..io.errors import DeployUsageError
from .harness import benchmark, environment, resolve_device

__all__ = ['DEFAULT_CONFIG', 'build_training_model', 'train_cost']

DEFAULT_CONFIG = 'configs/demo/sctnet-s_demo_cityscapes.py'


def build_training_model(config: str, use_siam: bool,
                         device: torch.device, seed: int = 0):
    """The config's segmentor in training mode (random weights, no files
    read; SyncBN -> BN) and its optim wrapper config."""
    cfg = load_config(resolve_config(config))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['use_siam'] = use_siam
    model_cfg.backbone['init_cfg'] = None
    if model_cfg.get('siam_head'):
        model_cfg.siam_head['teacher_checkpoint'] = None
    replace_sync_norm(model_cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS.build(model_cfg)
    model.to(device).train()
    return model, cfg


def _batch(cfg, batch: int, shape: Sequence[int], device, seed: int = 0):
    """Normalised-looking images and labels of the config's classes, as the
    data preprocessor hands them over."""
    g = torch.Generator().manual_seed(seed)
    n_cls = cfg.model.decode_head.num_classes
    h, w = shape
    inputs = torch.randn(batch, 3, h, w, generator=g).to(device)
    samples = []
    for _ in range(batch):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, n_cls, (1, h, w), generator=g).to(device))
        s.set_metainfo(dict(img_shape=(h, w), pad_shape=(h, w),
                            ori_shape=(h, w)))
        samples.append(s)
    return inputs, samples


def _train_step(model, wrapper, inputs, samples):
    def step():
        with wrapper.optim_context(model):
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        wrapper.update_params(loss)
    return step


@benchmark
def train_cost(config: str = DEFAULT_CONFIG,
               batch: Optional[int] = None,
               shape: Optional[Sequence[int]] = None,
               device: Optional[str] = None,
               amp: bool = False,
               rounds: int = 5,
               iters: int = 2,
               warmup: int = 2) -> dict:
    """``speed/train_cost.py``: milliseconds per training iteration of the
    variants in the module docstring. ``batch``/``shape`` default to the
    config's (train batch size, crop size)."""
    dev = resolve_device(device)
    if rounds < 1 or iters < 1:
        raise DeployUsageError('--rounds and --iters must be at least 1')
    # MMEngine's builders log through its current logger (one line per
    # parameter group): make that this run's own, warnings only, rather
    # than whichever logger the process created last
    MMLogger.get_instance(f'train_cost_{time.time_ns()}',
                          log_level='WARNING')
    cfg = load_config(resolve_config(config))
    if not cfg.model.get('siam_head') and cfg.model.get(
            'type') != 'EncoderDecoderDistill':
        raise DeployUsageError(f'{config} trains no SIAM student (no '
                               'EncoderDecoderDistill with a siam_head)')
    batch = batch or cfg.train_dataloader.batch_size
    shape = tuple(shape or cfg.crop_size)
    amp_cfg = amp_optim_wrapper(dev.type == 'cuda') if amp else None
    inputs, samples = _batch(cfg, batch, shape, dev)
    runners: Dict[str, callable] = {}
    for use_siam in (False, True):
        for precision in ('fp32', 'amp') if amp else ('fp32', ):
            model, cfg = build_training_model(config, use_siam, dev)
            optim = copy.deepcopy(cfg.optim_wrapper)
            if precision == 'amp':
                optim.update(amp_cfg)
            wrapper = build_optim_wrapper(model, optim)
            name = ('student+siam' if use_siam else 'student') + (
                f' ({"bf16" if dev.type == "cpu" else "fp16"})'
                if precision == 'amp' else '')
            runners[name] = _train_step(model, wrapper, inputs, samples)
            if use_siam and precision == 'fp32':
                siam_model = model
    head = [h for h in siam_model.auxiliary_head
            if hasattr(h, 'teacher_forward')][0]
    with torch.no_grad():
        feats = siam_model.extract_feat(inputs)
    runners['teacher forward'] = lambda: head.teacher_forward(inputs)

    def alignment():
        losses = head.loss(feats, inputs)
        sum(losses.values()).backward()

    # head.loss runs the teacher too: the alignment alone is the difference
    runners['siam head (teacher + alignment)'] = alignment
    print(f'{config}: batch {batch} x {shape[0]}x{shape[1]}, '
          f'{rounds} rounds x {iters} iteration(s), {dev}')
    # training steps need grad (harness.interleaved times under
    # inference_mode): the same alternation here
    times = {k: [] for k in runners}
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    for r in range(rounds):
        for k, fn in runners.items():
            if dev.type == 'cuda':
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            if dev.type == 'cuda':
                torch.cuda.synchronize(dev)
            times[k].append((time.perf_counter() - t0) / iters * 1e3)
        print(f'  round {r + 1}/{rounds}: ' + '  '.join(
            f'{k} {times[k][-1]:.0f}' for k in runners), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med['alignment (siam head - teacher forward)'] = (
        med['siam head (teacher + alignment)'] - med['teacher forward'])
    rows = {k: dict(median_ms=v, rounds_ms=times.get(k))
            for k, v in med.items()}
    base = med['student']
    for k, r in rows.items():
        r['x_student'] = r['median_ms'] / base
    result = dict(config=config, batch=batch, shape=list(shape), amp=amp,
                  rounds=rounds, iters=iters, variants=rows,
                  **environment(dev))
    print('\n' + format_table(result))
    return result


def format_table(result: dict) -> str:
    lines = ['| variant | ms per iteration (median) | x student step |',
             '|---|---:|---:|']
    for k, r in result['variants'].items():
        lines.append(f'| {k} | {r["median_ms"]:.0f} | '
                     f'{r["x_student"]:.2f} |')
    return '\n'.join(lines)
