# The official ADE20K schedule: schedule_160k.py with lr 5e-4, weight decay
# 0.01 and none on norm layers, poly decay to 0, a checkpoint every 4000 and
# an evaluation every 8000 iterations.
_base_ = ['./schedule_160k.py']
optim_wrapper = dict(
    optimizer=dict(lr=5e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(norm=dict(decay_mult=0.0))))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=160000,
        by_epoch=False),
]
# the official total batch: 4 GPUs x 8 images (--auto-scale-lr)
auto_scale_lr = dict(base_batch_size=32)
train_cfg = dict(val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=4000))
