#!/usr/bin/env python
"""Cost of the ImageNet pretraining recipe, estimated from CPU figures.

    python speed/pretrain_cost.py [--batch 16] [--rounds 3] [--json OUT]

Measures on this machine (mmseg_sctnet/pretrain/cost.py): training-step
throughput (fp32, 224x224, AdamW) of the SCTNet-S/B classifiers of
configs/pretrain/ and of torchvision's ResNet-50, interleaved; the
images/s one core prepares with the configs' training pipeline; exact
FLOPs. Then brackets the GPU throughput between ResNet-50's published A100
training throughput and that figure times the measured SCTNet/ResNet-50
ratio, caps it by the data loaders (--cores-per-gpu) and prints GPU-hours
for --epochs (docs/pretrain.md).
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mmseg_sctnet  # noqa: E402,F401
from mmseg_sctnet.pretrain.cost import measure  # noqa: E402

CONFIGS = {
    'sctnet-s': 'configs/pretrain/sctnet-s_8xb128_in1k.py',
    'sctnet-b': 'configs/pretrain/sctnet-b_8xb128_in1k.py',
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--steps', type=int, default=3, help='steps per round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--pipeline-images', type=int, default=64)
    p.add_argument('--cores-per-gpu', type=int, default=8)
    p.add_argument('--epochs', type=int, default=300)
    p.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads (1: CPU-time figures unaffected by idle '
        'OpenMP threads)')
    p.add_argument('--json', help='write the figures here')
    args = p.parse_args(argv)
    os.chdir(ROOT)
    res = measure(
        CONFIGS,
        batch=args.batch,
        steps=args.steps,
        rounds=args.rounds,
        pipeline_images=args.pipeline_images,
        cores_per_gpu=args.cores_per_gpu,
        epochs=args.epochs,
        threads=args.threads)
    thr, est = res['cpu_train_img_s'], res['estimates']
    print(f'\n{res["machine"]["cpu"]}')
    print(f'CPU training step, fp32, batch {args.batch}, 224x224, '
          f'{res["machine"]["threads"]} thread(s), images per second of '
          f'CPU time (median of {args.rounds} interleaved rounds):')
    for n, t in thr.items():
        print(f'  {n:9s} {t["img_s"]:7.2f} img/s (range {t["min"]:.2f}-'
              f'{t["max"]:.2f}; elapsed {t["wall_img_s"]:.2f})  '
              f'{res["gflops"][n]:.2f} GFLOPs/img forward')
    pipe = res['pipeline']
    print(f'training pipeline, one core: {pipe["img_s"]:.1f} img/s of CPU '
          f'time (elapsed {pipe["wall_img_s"]:.1f}; '
          f'{pipe["image_hw"][0]}x{pipe["image_hw"][1]} JPEG, '
          f'{pipe["jpeg_kb"]:.0f} KB)')
    for n, e in est.items():
        print(f'\n{n}: {e["rel_cost_vs_resnet50"]:.2f} x ResNet-50 '
              'throughput on this CPU; data loaders '
              f'{e["data_img_s_per_gpu"]:.0f} img/s per GPU '
              f'({e["cores_per_gpu"]} cores)')
        for k in ('optimistic', 'pessimistic'):
            b = e[k]
            print(f'  {k:11s}: compute {b["compute_img_s_per_gpu"]:.0f} '
                  f'img/s per GPU (needs {b["cores_per_gpu_to_keep_up"]:.0f}'
                  f' loader cores) -> {b["img_s_per_gpu"]:.0f} img/s '
                  f'({b["bound"]}-bound) -> {b["gpu_hours"]:.0f} GPU-hours '
                  f'for {e["epochs"]} epochs')
        print(f'  reference: {e["reference"]}')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
