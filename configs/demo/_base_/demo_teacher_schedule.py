# The teachers' schedule on the demo data (the SegFormer of
# configs/demo/segformer_mit-b0_demo_cityscapes.py, the UPerNet of
# configs/siam): AdamW lr 1e-3, weight decay 0.01 (none on norms), heads
# lr x10, a 30-iteration linear warm-up and a poly decay over 300
# iterations (tools/demo.py --teacher-iters changes the length; its
# --cfg-options rely on param_scheduler.0 = warm-up, .1 = poly).
_base_ = ['../../_base_/schedules/schedule_160k.py']
max_iters = 300
optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            norm=dict(decay_mult=0.0), head=dict(lr_mult=10.0))))
# the lr is for one process x 8 images (--auto-scale-lr)
auto_scale_lr = dict(base_batch_size=8)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=max_iters,
        by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 4)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=max_iters, max_keep_ckpts=1, save_best=None,
        save_last=True))
randomness = dict(seed=0)
