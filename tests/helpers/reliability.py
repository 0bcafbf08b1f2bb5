"""Helpers shared by the reliability tests (crash/resume, pre-emption,
clear errors, dataset checker): tiny training configs on generated data,
runs of tools/train.py to the end, scalar-log parsing, a toy runner."""
import json
import os
import os.path as osp

from .models import PY, ROOT
from .tools import free_port, run
BASE_CONFIG = osp.join(
    ROOT, 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')


def tiny_train_config(path,
                      data_root,
                      max_iters=8,
                      ckpt_interval=2,
                      use_siam=False,
                      with_test=False,
                      extra=''):
    """Write a config: SCTNet-S on 64x128 crops of generated Cityscapes-
    layout data, batch 2, no workers, deterministic, no validation, a
    checkpoint every ``ckpt_interval`` iterations, the loss logged every
    iteration. ``with_test``: a test dataloader on the val split (for
    tools/test.py). Returns ``path``."""
    if with_test:
        test = f'''
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')]))
test_cfg = dict(type='TestLoop')
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
'''
    else:
        test = '''
test_dataloader = None
test_cfg = None
test_evaluator = None
'''
    text = f'''
_base_ = [{BASE_CONFIG!r}]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (64, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    use_siam={use_siam!r},
    backbone=dict(init_cfg=None, norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
    siam_head=dict(teacher_checkpoint=None))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={data_root!r}, pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
{test}
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=4),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end={max_iters},
         by_epoch=False),
]
train_cfg = dict(max_iters={max_iters}, val_interval=10**9)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={ckpt_interval}, max_keep_ckpts=3,
                    save_best=None),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=7, deterministic=True)
env_cfg = dict(cudnn_benchmark=False)
{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def train_to_end(cfg, work_dir, *extra, procs=1, env=None):
    """Train ``cfg`` into ``work_dir`` with ``tools/train.py`` (one
    process) or ``tools/dist_train.sh CONFIG procs`` (torchrun, gloo on
    CPU), ``extra`` arguments appended; asserts exit status 0 and returns
    the output."""
    if procs == 1:
        cmd = [PY, 'tools/train.py', cfg, '--work-dir', work_dir]
    else:
        cmd = ['bash', 'tools/dist_train.sh', cfg, str(procs), '--work-dir',
               work_dir]
        env = dict(env or {}, MASTER_PORT=str(free_port()))
    res = run(cmd + list(extra), env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    return res.stdout


def read_losses(work_dir):
    """``[{iteration: loss}, ...]``, one dict per run (oldest first), from
    the runs' ``vis_data/scalars.json``."""
    runs = []
    for run in sorted(os.listdir(work_dir)):
        f = osp.join(work_dir, run, 'vis_data', 'scalars.json')
        if not osp.isfile(f):
            continue
        out = {}
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['iter']] = rec['loss']
        runs.append(out)
    return runs


_TOY_COUNT = [0]


def toy_runner(work_dir,
               max_iters=6,
               interval=3,
               custom_hooks=None,
               max_keep_ckpts=-1,
               num_workers=0,
               **kwargs):
    """A real MMEngine Runner on a 2-parameter regression model: AdamW,
    LinearLR + PolyLR, InfiniteSampler, AtomicCheckpointHook every ``interval``
    iterations. Checkpoints hold everything MMEngine writes (optimizer,
    message hub with HistoryBuffers, scheduler states, meta).
    ``num_workers`` > 0: persistent data-loader worker processes."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import Dataset

    class ToyData(Dataset):

        def __len__(self):
            return 16

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            x = torch.randn(2, generator=g)
            return dict(inputs=x, data_samples=x.sum(0, keepdim=True) * 3)

    class ToyModel(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            x = torch.stack(inputs)
            out = self.linear(x)
            if mode == 'loss':
                y = torch.stack(data_samples)
                return dict(loss=((out - y)**2).mean())
            return out

    _TOY_COUNT[0] += 1
    cfg = dict(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=4,
            num_workers=num_workers,
            persistent_workers=num_workers > 0),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=0.5,
                by_epoch=False,
                begin=0,
                end=2),
            dict(
                type='PolyLR',
                power=1.0,
                by_epoch=False,
                begin=0,
                end=max_iters)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='AtomicCheckpointHook',
                interval=interval,
                by_epoch=False,
                max_keep_ckpts=max_keep_ckpts),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks or [],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=3),
        default_scope='mmseg',
        experiment_name=f'toy_{os.getpid()}_{_TOY_COUNT[0]}')
    cfg.update(kwargs)
    return Runner(**cfg)
