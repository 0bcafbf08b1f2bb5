"""SCTNet against real-time peers, same process, same input, same options
(the body of ``speed/compare_peers.py``; see docs/speed.md).

Models (random weights, nothing downloaded): SCTNet-S/B from this
repository's Cityscapes configs, and PIDNet-S/M/L, DDRNet-23-slim/23,
BiSeNetV2, STDC1/2 and SegFormer-B0 built from MMSegmentation 1.2.2's own
Cityscapes configs (pretrained inits stripped, SyncBN -> BN, 19 classes).
Every model is timed by :func:`.benchmark.measure`, one after the other;
``rounds`` repeats that interleaved and reports the median.

``deploy``: SCTNet runs ``switch_to_deploy``; the peers, which have no
deploy mode of their own, get every BatchNorm that directly consumes a
convolution's output folded into it (pairs found by data flow), checked
numerically against the eager model (a peer whose folded output differs
is timed eager and marked).

GFLOPs are exact (``FlopCounterMode``: convolutions and matrix products,
2 x MACs); params are those an inference forward uses.
"""
import copy
import gc
import os
import os.path as osp
import statistics
from types import SimpleNamespace

import mmseg
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ..deploy.model import (SegmentorWithResize, build_inference_model,
                            compile_for_inference)
from ..io.config import resolve_config
from ..io.errors import DeployUsageError
from ..models.layers.fold import fuse_conv_bn
from ..visualization.pyplot import pyplot
from . import harness as H
from .flops import SegmentorForward, count_flops, inference_params

#: name -> (label, config, source) ; 'repo' configs are under this repo,
#: 'mmseg' ones under MMSegmentation's packaged configs.
MODELS = {
    'sctnet-s': ('SCTNet-S', 'configs/sctnet/cityscapes/'
                 'sctnet-s_seg50_8x2_160k_cityscapes.py', 'repo'),
    'sctnet-b': ('SCTNet-B', 'configs/sctnet/cityscapes/'
                 'sctnet-b_seg50_8x2_160k_cityscapes.py', 'repo'),
    'pidnet-s': ('PIDNet-S', 'pidnet/pidnet-s_2xb6-120k_1024x1024-'
                 'cityscapes.py', 'mmseg'),
    'pidnet-m': ('PIDNet-M', 'pidnet/pidnet-m_2xb6-120k_1024x1024-'
                 'cityscapes.py', 'mmseg'),
    'pidnet-l': ('PIDNet-L', 'pidnet/pidnet-l_2xb6-120k_1024x1024-'
                 'cityscapes.py', 'mmseg'),
    'ddrnet-23-slim': ('DDRNet-23-slim', 'ddrnet/ddrnet_23-slim_in1k-pre_'
                       '2xb6-120k_cityscapes-1024x1024.py', 'mmseg'),
    'ddrnet-23': ('DDRNet-23', 'ddrnet/ddrnet_23_in1k-pre_2xb6-120k_'
                  'cityscapes-1024x1024.py', 'mmseg'),
    'bisenetv2': ('BiSeNetV2', 'bisenetv2/bisenetv2_fcn_4xb4-160k_'
                  'cityscapes-1024x1024.py', 'mmseg'),
    'stdc1': ('STDC1', 'stdc/stdc1_4xb12-80k_cityscapes-512x1024.py',
              'mmseg'),
    'stdc2': ('STDC2', 'stdc/stdc2_4xb12-80k_cityscapes-512x1024.py',
              'mmseg'),
    'segformer-b0': ('SegFormer-B0', 'segformer/segformer_mit-b0_8xb1-160k_'
                     'cityscapes-1024x1024.py', 'mmseg'),
}
REFERENCE = 'sctnet-b'
FUSE_TOLERANCE = 1e-4


def config_path(name: str) -> str:
    _, cfg, source = MODELS[name]
    if source == 'repo':
        return resolve_config(cfg)
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', cfg)
    if not osp.isfile(path):
        raise DeployUsageError(
            f'MMSegmentation config {path} not found (mmsegmentation 1.2.2 '
            'ships it under .mim/configs; reinstall it with pip)')
    return path


def fuse_conv_bn_dataflow(model, x):
    """Fold every BatchNorm whose input is the output of a convolution.

    Pairs are found by data flow (forward hooks on one run with ``x``), not
    by module order: a BN is paired with the conv whose output tensor it
    receives, when both run exactly once. Returns ``(model, n_fused)``.
    """
    produced, pairs, calls, hooks = {}, [], {}, []

    def conv_hook(mod, inp, out):
        calls[id(mod)] = calls.get(id(mod), 0) + 1
        produced[id(out)] = (mod, out)

    def bn_hook(mod, inp):
        calls[id(mod)] = calls.get(id(mod), 0) + 1
        hit = produced.get(id(inp[0]))
        if hit is not None and hit[1] is inp[0]:
            pairs.append((hit[0], mod))

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, _BatchNorm):
            hooks.append(m.register_forward_pre_hook(bn_hook))
    try:
        with torch.inference_mode():
            SegmentorForward(model)(x)
    finally:
        for h in hooks:
            h.remove()
    names = {id(m): n for n, m in model.named_modules()}
    n_fused = 0
    for conv, bn in pairs:
        if calls[id(conv)] != 1 or calls[id(bn)] != 1:
            continue
        for mod, new in ((conv, fuse_conv_bn(conv, bn)),
                         (bn, torch.nn.Identity())):
            parent, _, leaf = names[id(mod)].rpartition('.')
            setattr(model.get_submodule(parent) if parent else model, leaf,
                    new)
        n_fused += 1
    return model, n_fused


def fuse_peer(model, shape):
    """Conv-BN folding for a peer, kept only if it computes the same.

    The check runs in float64, so that a wrong pairing (an error of the
    order of the activations) is not confused with float32 rounding.
    """
    x = torch.randn(1, 3, min(shape[0], 128), min(shape[1], 256),
                    generator=torch.Generator().manual_seed(0))
    fused, n = fuse_conv_bn_dataflow(copy.deepcopy(model), x)
    with torch.inference_mode():
        ref = SegmentorWithResize(copy.deepcopy(model).double())(x.double())
        out = SegmentorWithResize(copy.deepcopy(fused).double())(x.double())
    err = ((out - ref).abs().max() / ref.abs().max()).item()
    if err < FUSE_TOLERANCE:
        return fused, f'{n} conv-BN pairs folded (float64 max rel err ' \
            f'{err:.1e})'
    return model, f'folding changed the output ({err:.1e}): timed eager'


def build_one(name, args, dev, log=print) -> dict:
    """Build, count and prepare one model for timing."""
    label, _, source = MODELS[name]
    model = build_inference_model(config_path(name))
    params = inference_params(model)
    gflops = count_flops(model, tuple(args.shape))['gflops']
    mode = 'eager'
    if args.deploy:
        if source == 'repo':
            mode = 'switch_to_deploy'
        else:
            model, mode = fuse_peer(model, args.shape)
    cl = args.channels_last if args.channels_last is not None else (
        args.deploy)
    timed = H.prepare(
        model,
        dev,
        deploy=args.deploy and source == 'repo',
        channels_last=cl,
        fp16=args.fp16)
    if args.compile:
        timed = compile_for_inference(timed)
    log(f'{label}: {params / 1e6:.2f} M params, {gflops:.1f} GFLOPs, {mode}')
    return dict(name=name, model=label, params=params, gflops=gflops,
                mode=mode, timed=timed)


def time_all(entries, args, dev, log=print) -> None:
    """Protocol timing of every model, ``--rounds`` times interleaved.

    The reported latency is the median over rounds (one round: the
    protocol's figure); warm-up runs precede each model's first round.
    """
    inp = torch.randn(1, 3, *args.shape, device=dev)
    if args.fp16:
        inp = inp.half()
    for e in entries:
        e['rounds_ms'] = []
    for r in range(args.rounds):
        for e in entries:
            log(f'{e["model"]} (round {r + 1}/{args.rounds})')
            res = H.measure(e['timed'], inp,
                            warmup=args.warmup if r == 0 else 1,
                            min_time=args.min_time,
                            calib_time=args.calib_time, iters=args.iters,
                            log=log)
            e['rounds_ms'].append(res['latency_ms'])
            e['iterations'] = res['iterations']
            log(f'  latency {res["latency_ms"]:.2f} ms, FPS '
                f'{res["fps"]:.2f}')
    for e in entries:
        e['latency_ms'] = statistics.median(e['rounds_ms'])
        e['fps'] = 1000.0 / e['latency_ms']


def format_table(rows, ref_label) -> str:
    head = (f'| {"model":16s} | {"params (M)":>10s} | {"GFLOPs":>8s} | '
            f'{"latency (ms)":>12s} | {"FPS":>8s} | '
            f'{"vs " + ref_label:>14s} |')
    sep = '|' + '|'.join('-' * (len(c)) for c in head.split('|')[1:-1]) + '|'
    lines = [head, sep]
    for r in rows:
        lines.append(
            f'| {r["model"]:16s} | {r["params"] / 1e6:10.2f} | '
            f'{r["gflops"]:8.1f} | {r["latency_ms"]:12.2f} | '
            f'{r["fps"]:8.2f} | {r["relative_speed"]:13.2f}x |')
    return '\n'.join(lines)


def draw_chart(rows, path, title, ref_label):
    plt = pyplot()
    rows = sorted(rows, key=lambda r: r['fps'])
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6))
    colors = ['#d62728' if r['name'].startswith('sctnet') else '#7f7f7f'
              for r in rows]
    y = range(len(rows))
    ax.barh(y, [r['fps'] for r in rows], color=colors)
    ax.set_yticks(list(y))
    ax.set_yticklabels([r['model'] for r in rows])
    top = max(r['fps'] for r in rows)
    for i, r in enumerate(rows):
        ax.text(r['fps'] + top * 0.01, i,
                f'{r["fps"]:.2f} FPS  ({r["latency_ms"]:.0f} ms, '
                f'{r["gflops"]:.1f} GFLOPs, {r["params"] / 1e6:.1f} M, '
                f'{r["relative_speed"]:.2f}x {ref_label})',
                va='center', fontsize=8)
    ax.set_xlim(0, top * 1.9)
    ax.set_xlabel('frames per second (higher is faster)')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare_peers(models=tuple(MODELS),
                  shape=(512, 1024),
                  device=None,
                  deploy=False,
                  channels_last=None,
                  fp16=False,
                  compile=False,
                  warmup=10,
                  min_time=6.0,
                  calib_time=1.0,
                  iters=None,
                  rounds=1,
                  threads=None,
                  out_dir=None,
                  overwrite=False) -> dict:
    """``speed/compare_peers.py``: table, ``results.json``, ``chart.png``.

    Args as the script's options (``models``: names of :data:`MODELS`, a
    list or a comma-separated string).
    """
    if isinstance(models, str):
        models = H.parse_names(models.lower(), MODELS, '--models')
    if rounds < 1:
        raise DeployUsageError('--rounds must be >= 1')
    if min(shape) < 64:
        raise DeployUsageError(f'--shape {list(shape)}: peers need at least '
                               '64x64')
    args = SimpleNamespace(
        models=list(models), shape=tuple(shape), deploy=deploy,
        channels_last=channels_last, fp16=fp16, compile=compile,
        warmup=warmup, min_time=min_time, calib_time=calib_time, iters=iters,
        rounds=rounds)
    dev = H.resolve_device(device)
    H.set_threads(threads)
    if fp16 and dev.type != 'cuda':
        raise DeployUsageError('--fp16 needs --device cuda')
    if dev.type == 'cuda':
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
    tag = f'peers_{shape[0]}x{shape[1]}_{dev.type}'
    tag += '_deploy' if deploy else ''
    tag += '_fp16' if fp16 else ''
    out_dir = out_dir or osp.join('work_dirs', 'speed', tag)
    files = {k: osp.join(out_dir, f) for k, f in
             (('txt', 'table.txt'), ('json', 'results.json'),
              ('png', 'chart.png'))}
    existing = [f for f in files.values() if osp.exists(f)]
    if existing and not overwrite:
        raise DeployUsageError(f'{existing} exist; pass --overwrite or '
                               'another --out-dir')
    env = H.environment(dev)
    cl = args.channels_last if args.channels_last is not None else (
        args.deploy)
    opts = dict(deploy=args.deploy, channels_last=bool(cl), fp16=args.fp16,
                compile=args.compile, batch=1, resize=True)
    print(f'input 1x3x{args.shape[0]}x{args.shape[1]} on {env["device"]}, '
          f'torch {env["torch"]}, options {opts}')
    entries = [build_one(n, args, dev) for n in args.models]
    time_all(entries, args, dev)
    rows = []
    for e in entries:
        e.pop('timed')
        rows.append(e)
    del entries
    gc.collect()
    ref = next((r for r in rows if r['name'] == REFERENCE), rows[0])
    for r in rows:
        r['relative_speed'] = r['fps'] / ref['fps']
    ref_label = ref['model']
    title = (f'1x3x{args.shape[0]}x{args.shape[1]}, {env["device"]}, '
             f'torch {env["torch"]}; deploy={args.deploy}, '
             f'channels_last={bool(cl)}, fp16={args.fp16}')
    table = format_table(rows, ref_label)
    print('\n' + title + '\n' + table)
    os.makedirs(out_dir, exist_ok=True)
    with open(files['txt'], 'w') as f:
        f.write(title + '\n' + table + '\n')
    result = dict(shape=list(args.shape), options=opts, reference=ref_label,
                  protocol=dict(warmup=args.warmup, min_time=args.min_time,
                                calib_time=args.calib_time,
                                fixed_iters=args.iters, rounds=args.rounds),
                  rows=rows, **env)
    H.write_json(files['json'], result, overwrite=True)
    draw_chart(rows, files['png'], title, ref_label)
    print(f'wrote {files["txt"]}, {files["json"]}, {files["png"]}')
    return result
