# The students' schedule on the demo data (configs/demo/sctnet-s_demo_cityscapes.py
# and the students of configs/siam), so that every student trains alike: the official optimiser (AdamW, heads lr x10, the frozen
# teacher left out; configs/_base_/schedules/schedule_160k.py) at lr 1e-3,
# a 20-iteration linear warm-up and a poly decay over 200 iterations.
# param_scheduler.0 is the warm-up, .1 the poly decay: tools/demo.py's
# --cfg-options for another length rely on that layout.
_base_ = ['../../_base_/schedules/schedule_160k.py']
max_iters = 200
optim_wrapper = dict(optimizer=dict(lr=1e-3))
# the lr is for one process x 8 images, the demo's (--auto-scale-lr)
auto_scale_lr = dict(base_batch_size=8)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
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
