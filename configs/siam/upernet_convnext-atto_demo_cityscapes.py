# A non-SegFormer SIAM teacher for the demo data: UPerNet (MMSegmentation's
# UPerHead, with its FCN auxiliary head) on a ConvNeXt-atto backbone
# (MMPretrain's ConvNeXt, arch 'atto': depths 2/2/6/2, widths
# 40/80/160/320, 3.4M parameters), trained with plain MMSegmentation
# (EncoderDecoder, no SCTNet code), from scratch (nothing can be downloaded
# here). A convolutional teacher about as large as the demo's MiT-B0
# SegFormer (3.3M backbone parameters), so that it trains on a CPU in
# minutes like the demo teacher; ConvNeXt-T and Swin-T have 28M, and a
# Swin cut to depths 2/2/2/2 and width 48 cost about twice this per
# iteration in a rough CPU timing. UPerHead with 64 channels: its features
# before fusion (SDHA) are 4 x 64 = 256 channels at 1/4; BFA aligns with
# stage 3 (160 channels, 1/16) and stage 4 (320, 1/32).
#
#   python tools/train.py configs/siam/upernet_convnext-atto_demo_cityscapes.py
#   python tools/pth_convert.py work_dirs/upernet_convnext-atto_demo_cityscapes/iter_300.pth \
#       demo_output/teacher_convnext/upernet_convnext-atto_teacher.pth
#
# Schedule: the demo SegFormer teacher's (AdamW lr 1e-3, heads lr x10, no
# weight decay on norms, 300 iterations).
_base_ = [
    '../demo/_base_/demo_cityscapes.py',
    '../demo/_base_/demo_teacher_schedule.py', '../_base_/default_runtime.py'
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
        type='mmpretrain.ConvNeXt',
        arch='atto',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.1,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=None),
    decode_head=dict(
        type='UPerHead',
        in_channels=[40, 80, 160, 320],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=64,
        dropout_ratio=0.1,
        num_classes=8,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=160,
        in_index=2,
        channels=64,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=8,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
