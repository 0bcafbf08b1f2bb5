# Step 1 of the custom-data workflow: train the SegFormer teacher (MiT-B0)
# with plain MMSegmentation on the dataset of custom_dataset.py.
#
#   python tools/train.py configs/custom/segformer_mit-b0_custom.py
#   python tools/pth_convert.py \
#       work_dirs/segformer_mit-b0_custom/iter_160000.pth \
#       pretrained/Teacher_SegFormer_B0_custom.pth
#
# MiT-B0 is the small, fast teacher that configs/custom/sctnet-s_custom.py
# expects. The paper pairs SCTNet-S with MiT-B2 (segformer_mit-b2_custom.py
# + sctnet-s_mit-b2-teacher_custom.py). The teacher's architecture here and
# in the SCTNet config's `siam_head` must be the same.
_base_ = ['./custom_dataset.py', '../_base_/default_runtime.py']

# ImageNet-1k MiT weights released by MMSegmentation (downloaded on first
# use; put a local copy's path here on machines without internet)
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b0_20220624-7e0fe6dd.pth'  # noqa
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN when not distributed
model = dict(
    type='EncoderDecoder',  # plain MMSegmentation SegFormer
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=_base_.crop_size,  # noqa: F821 pad training crops after
        pad_val=0,  # normalisation: image 0, label 255 (ignored)
        seg_pad_val=255),
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=32,  # MiT-B0: 32, depths 2-2-2-2
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],  # embed_dims x num_heads
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=len(_base_.classes),  # noqa: F821 (from custom_dataset.py)
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# MMSegmentation's SegFormer schedule: AdamW 6e-5, heads lr x10, no weight
# decay on norms and positional blocks, 1500 warm-up iterations, poly decay.
# 160k iterations as in the paper's teachers; fewer do for small datasets.
max_iters = 160000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=max_iters,
        by_epoch=False)
]
# MMSegmentation's SegFormer runs use 8 GPUs x 2 images; --auto-scale-lr
# scales the lr to your total batch (GPUs x batch_size of custom_dataset.py)
auto_scale_lr = dict(enable=False, base_batch_size=16)
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=8000,
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
