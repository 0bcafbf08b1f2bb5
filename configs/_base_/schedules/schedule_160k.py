# The official schedule, with the values of the official Cityscapes configs
# (lr 4e-4, weight decay 0.0125, min lr 1e-6, checkpoint and evaluation
# every 2000 iterations). schedule_160k_ade20k.py and
# schedule_160k_coco-stuff10k.py change what the official ADE20K and
# COCO-Stuff-10K configs set differently.
# AdamW, heads lr x10, frozen teacher left out of the optimizer
# (SCTNetOptimWrapperConstructor), poly decay (power 1) over 160k iterations
# with a 1500-iteration linear warm-up from 1e-6: both schedulers run from
# iteration 0 and multiply, as mmcv-0.x's "poly + linear warmup" did.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='SCTNetOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.0125),
    paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0))),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=1e-6,
        power=1.0,
        begin=0,
        end=160000,
        by_epoch=False),
]
# The official total batch, 2 GPUs x 8 images (Cityscapes); the lr above is
# tuned for it. tools/train.py --auto-scale-lr scales every lr linearly to
# the real total batch (processes x train_dataloader.batch_size).
auto_scale_lr = dict(enable=False, base_batch_size=16)
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=160000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # MMEngine's CheckpointHook with crash-safe saving (docs/reliability.md)
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=2000,
        max_keep_ckpts=5, save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
