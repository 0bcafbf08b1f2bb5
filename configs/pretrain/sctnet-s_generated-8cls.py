# The SCTNet-S pretraining recipe on generated classification data (8
# classes, 64x64; configs/pretrain/_base_/datasets/generated_8cls_64px.py): a
# CPU-sized stand-in for ImageNet (docs/pretrain.md). Same model, optimizer,
# augmentation and EMA as sctnet-s_8xb128_in1k.py; 30 epochs with one
# warm-up epoch, lr 1e-3 at batch 32 (no linear scaling), EMA decay 0.99.
_base_ = [
    './_base_/models/sctnet-s_cls.py',
    './_base_/datasets/generated_8cls_64px.py',
    './_base_/schedules/imagenet_adamw_300e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=8))
train_cfg = dict(max_epochs=30)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        end=1,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
custom_hooks = [
    dict(
        type='EMAHook',
        momentum=1e-2,
        update_buffers=True,
        priority='ABOVE_NORMAL'),
    dict(type='mmseg.NonFiniteLossHook', priority='ABOVE_NORMAL'),
]
# a fixed seed: the demo's ablation (tools/demo.py --ablation) pretrains
# with this config and compares runs from its output (MMPretrain's runtime
# leaves the seed to chance)
randomness = dict(seed=0, deterministic=False)
