# The demo's teacher: a SegFormer (MiT-B0 + SegformerHead) trained with plain
# MMSegmentation (its EncoderDecoder, no SCTNet code involved) on the demo
# dataset, from scratch (no ImageNet weights can be downloaded here).
# tools/demo.py trains it, then converts it with tools/pth_convert.py.
#
#   python tools/train.py configs/demo/segformer_mit-b0_demo_cityscapes.py
_base_ = [
    './_base_/demo_cityscapes.py', './_base_/demo_teacher_schedule.py',
    '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
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
        embed_dims=32,  # MiT-B0
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
        drop_path_rate=0.1),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=128,
        dropout_ratio=0.1,
        num_classes=8,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# no weight decay on the position blocks either (MMSegmentation's SegFormer)
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(pos_block=dict(decay_mult=0.0))))
