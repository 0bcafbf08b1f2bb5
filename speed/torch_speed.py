#!/usr/bin/env python
"""Latency / FPS of an SCTNet model under the official (PIDNet) protocol.

    python speed/torch_speed.py --type sctnet-b-seg100
    cd speed; python torch_speed.py --type sctnet-b-seg100   # official usage

Types (config, input H x W): sctnet-s-seg50 / sctnet-b-seg50 (512x1024),
sctnet-s-seg75 / sctnet-b-seg75 (768x1536), sctnet-b-seg100 (1024x2048),
sctnet-s-ade / sctnet-b-ade (512x512), sctnet-b-coco (640x640).

Batch 1 (``--batch``), random input, random weights (``--checkpoint`` to time
a trained file, which changes nothing but is reassuring), 10 warm-up runs,
iterations adapted to about 6 s, the final bilinear upsampling to the input
size included, ``cudnn.benchmark`` on GPU. Options: ``--device cpu|cuda``,
``--fp16`` (GPU), ``--channels-last``, ``--compile`` (torch.compile),
``--deploy`` (mmseg_sctnet.deploy.switch_to_deploy: folded BNs, lean
attention, channels-last unless ``--no-channels-last``), ``--shape H W``,
``--config`` (any SCTNet or MMSegmentation config), ``--json OUT``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import _harness as H  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='SCTNet speed measurement (official protocol)')
    p.add_argument(
        '--type',
        default='sctnet-b-seg100',
        choices=sorted(H.MODEL_TYPES),
        help='model and test size (default sctnet-b-seg100)')
    p.add_argument(
        '--config', help='time this config instead of --type\'s (needs '
        '--shape unless it is one of the --type configs)')
    p.add_argument('--checkpoint', help='load these weights (eager or '
                   'deploy checkpoint); random weights otherwise')
    p.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input height and width (default: the type\'s test size)')
    p.add_argument('--batch', type=int, default=1, help='batch size (1)')
    p.add_argument('--device', help='cpu or cuda (default: cuda if present)')
    p.add_argument('--fp16', action='store_true', help='half precision '
                   '(GPU only)')
    p.add_argument(
        '--channels-last',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='channels-last memory format (default: on with --deploy, off '
        'otherwise)')
    p.add_argument('--compile', action='store_true', help='torch.compile the '
                   'timed module (compilation happens during warm-up)')
    p.add_argument('--deploy', action='store_true', help='time the deployed '
                   'graph (mmseg_sctnet.deploy.switch_to_deploy)')
    p.add_argument('--no-resize', action='store_true', help='leave out the '
                   'final upsampling to the input size (protocol: included)')
    p.add_argument('--warmup', type=int, default=10, help='warm-up runs (10)')
    p.add_argument('--min-time', type=float, default=6.0, help='target '
                   'seconds of the timed loop (6)')
    p.add_argument('--calib-time', type=float, default=1.0, help='seconds '
                   'of the calibration loop (1)')
    p.add_argument('--iters', type=int, help='fixed number of timed runs '
                   '(skips calibration)')
    p.add_argument('--threads', type=int, help='CPU threads (torch default '
                   'otherwise)')
    p.add_argument('--json', help='write the result to this JSON file')
    p.add_argument('--overwrite', action='store_true', help='allow --json to '
                   'replace an existing file')
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error('--batch must be >= 1')
    if args.shape and min(args.shape) < 32:
        p.error(f'--shape {args.shape}: height and width must be >= 32')
    if args.iters is not None and args.iters < 1:
        p.error('--iters must be >= 1')
    return args


def run(args) -> dict:
    dev = H.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fp16 and dev.type != 'cuda':
        raise SystemExit('error: --fp16 needs --device cuda (half-precision '
                         'convolutions on CPU are not a meaningful benchmark)')
    if dev.type == 'cuda':
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
    config, shape = H.MODEL_TYPES[args.type]
    name = args.type
    if args.config:
        config, name = args.config, osp.splitext(osp.basename(args.config))[0]
        if not args.shape:
            raise SystemExit('error: --config needs --shape H W')
    if args.shape:
        shape = tuple(args.shape)
    from mmseg_sctnet.deploy import init_model
    segmentor = init_model(H.resolve_config(config), args.checkpoint)
    params = H.inference_params(segmentor)
    model = H.prepare(
        segmentor,
        dev,
        deploy=args.deploy,
        channels_last=args.channels_last,
        fp16=args.fp16,
        resize=not args.no_resize)
    if args.compile:
        model = torch.compile(model)
    inp = torch.randn(args.batch, 3, *shape, device=dev)
    if args.fp16:
        inp = inp.half()
    cl = args.channels_last if args.channels_last is not None else (
        args.deploy)
    opts = dict(
        deploy=args.deploy,
        channels_last=bool(cl),
        fp16=args.fp16,
        compile=args.compile,
        resize=not args.no_resize,
        batch=args.batch)
    print(f'{name}: input {args.batch}x3x{shape[0]}x{shape[1]} on '
          f'{H.device_name(dev)}, options {opts}')
    res = H.measure(
        model,
        inp,
        warmup=args.warmup,
        min_time=args.min_time,
        calib_time=args.calib_time,
        iters=args.iters)
    result = dict(
        type=name,
        config=config,
        checkpoint=args.checkpoint,
        shape=list(shape),
        params=params,
        **opts,
        **res,
        **H.environment(dev),
        protocol=dict(
            warmup=args.warmup,
            min_time=args.min_time,
            calib_time=args.calib_time,
            fixed_iters=args.iters))
    print('=========Speed Testing=========')
    print(f'latency {res["latency_ms"]:.2f} ms  FPS {res["fps"]:.2f}  '
          f'({res["iterations"]} iterations, {res["seconds"]:.1f} s)')
    if args.json:
        H.write_json(args.json, result, overwrite=args.overwrite)
        print(f'wrote {args.json}')
    return result


def main(argv=None) -> dict:
    return run(parse_args(argv))


if __name__ == '__main__':
    main()
