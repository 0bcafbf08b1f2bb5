#!/usr/bin/env python
"""Deploy mode against eager mode, measured interleaved.

    python speed/deploy_speedup.py --type sctnet-b-seg50 --device cpu

Builds one random-weight SCTNet, derives the variants from it (same
weights) and times them in alternating rounds (A B C A B C ...), so that a
change in background load hits every variant alike; each round runs
``--iters`` forwards per variant (final upsampling included, batch 1).
Reports, per variant, the median and the minimum of the per-round mean
latencies and the speed-up of the median against eager mode, and checks
that every variant's output equals eager mode's (max relative error).

Variants: ``eager``, ``eager-cl`` (channels-last only), ``deploy``
(switch_to_deploy defaults: folded BNs + channels-last),
``deploy-nchw`` (channels_last=False), ``deploy-bn`` (pre-norms kept as
BatchNorm, fold_prenorm=False), and, on request only (compiling takes about
a minute on 2 CPU cores), ``deploy-compile`` (``torch.compile`` of the
deployed model; compiled before the rounds start).
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import _harness as H  # noqa: E402
import torch  # noqa: E402

VARIANTS = {
    'eager': dict(deploy=False, channels_last=False),
    'eager-cl': dict(deploy=False, channels_last=True),
    'deploy': dict(deploy=True, channels_last=True),
    'deploy-nchw': dict(deploy=True, channels_last=False),
    'deploy-bn': dict(deploy=True, channels_last=True, fold_prenorm=False),
    'deploy-compile': dict(deploy=True, channels_last=True, compile=True),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--type', default='sctnet-b-seg50',
                   choices=sorted(H.MODEL_TYPES))
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    p.add_argument('--device', help='cpu or cuda (default: cuda if present)')
    p.add_argument('--variants', default='eager,eager-cl,deploy,deploy-nchw,'
                   'deploy-bn', help='comma-separated subset of '
                   f'{",".join(VARIANTS)}')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=1,
                   help='forwards per variant and round')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int)
    p.add_argument('--json', help='write the result to this JSON file')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    names = [v.strip() for v in args.variants.split(',') if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        p.error(f'--variants: unknown {bad}; choose from {list(VARIANTS)}')
    args.variants = names
    return args


def build_variant(base, spec, dev):
    from mmseg_sctnet.deploy import SegmentorWithResize, switch_to_deploy
    m = copy.deepcopy(base)
    if spec['deploy']:
        switch_to_deploy(m, fold_prenorm=spec.get('fold_prenorm', True),
                         channels_last=spec['channels_last'])
    elif spec['channels_last']:
        m.to(memory_format=torch.channels_last)
    m = SegmentorWithResize(m).to(dev).eval()
    return torch.compile(m) if spec.get('compile') else m


def main(argv=None) -> dict:
    args = parse_args(argv)
    dev = H.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    config, shape = H.MODEL_TYPES[args.type]
    if args.shape:
        shape = tuple(args.shape)
    from mmseg_sctnet.deploy import build_inference_model
    base = build_inference_model(H.resolve_config(config))
    # non-trivial BN statistics, so that folding errors would show
    g = torch.Generator().manual_seed(0)
    for mod in base.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(torch.randn(mod.num_features,
                                               generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features,
                                             generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features,
                                            generator=g) * 0.1)
    models = {v: build_variant(base, VARIANTS[v], dev) for v in args.variants}
    inp = torch.randn(1, 3, *shape, device=dev)
    print(f'{args.type} at {shape[0]}x{shape[1]} on {H.device_name(dev)}; '
          f'{args.rounds} rounds x {args.iters} iteration(s)')
    times = {v: [] for v in args.variants}
    errors = {}
    with torch.inference_mode():
        ref = None
        for v, m in models.items():
            out = m(inp).float()
            if ref is None:
                ref = out
            errors[v] = ((out - ref).abs().max() /
                         ref.abs().max()).item()
            for _ in range(args.warmup - 1):
                m(inp)
        for r in range(args.rounds):
            for v, m in models.items():
                H._sync(dev)
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    m(inp)
                H._sync(dev)
                times[v].append((time.perf_counter() - t0) / args.iters * 1e3)
            print(f'  round {r + 1}/{args.rounds}: ' + '  '.join(
                f'{v} {times[v][-1]:.1f}' for v in args.variants),
                flush=True)
    first = args.variants[0]
    base_med = statistics.median(times[first])
    rows = {}
    print(f'\n{"variant":14s} {"median ms":>10s} {"min ms":>10s} '
          f'{"speed-up":>9s} {"max rel err":>12s}')
    for v in args.variants:
        med = statistics.median(times[v])
        rows[v] = dict(median_ms=med, min_ms=min(times[v]),
                       speedup_vs_first=base_med / med, rounds_ms=times[v],
                       max_rel_err=errors[v], **VARIANTS[v])
        print(f'{v:14s} {med:10.1f} {min(times[v]):10.1f} '
              f'{base_med / med:8.3f}x {errors[v]:12.2e}')
    result = dict(type=args.type, shape=list(shape), rounds=args.rounds,
                  iters=args.iters, reference=first, variants=rows,
                  **H.environment(dev))
    if args.json:
        H.write_json(args.json, result, overwrite=args.overwrite)
        print(f'wrote {args.json}')
    return result


if __name__ == '__main__':
    main()
