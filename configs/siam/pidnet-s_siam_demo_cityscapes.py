# PIDNet-S (MMSegmentation 1.2.2's PIDNet + PIDHead, as in its pidnet-s
# config) as a SIAM student of the demo's SegFormer teacher
# (configs/demo/segformer_mit-b0_demo_cityscapes.py, converted by
# tools/demo.py), on the demo data: 8 street classes, 128x256 crops, the
# demo's schedule (configs/demo/_base_/demo_schedule.py).
#
# SIAM taps (docs/siam.md, "Distil your own student from your own teacher"):
# * decoder: backbone output 1 in training (PIDNet returns the P, fused and
#   D features; the fused one, 1/8, 4c = 128 channels, is what the head's
#   integral branch classifies: SCTNet's x_out);
# * stage 3 / stage 4: the integral (context) branch at 1/16 (128 channels)
#   and 1/32 (256): the inputs of i_branch_layers.1 and .2 (no backbone
#   output; read by forward hooks of the segmentor).
# Changes to MMSegmentation's recipe: BN instead of SyncBN, no ImageNet
# initialisation, 8 classes without the Cityscapes class weights, OHEM's
# min_kept scaled with the pixels of a batch (131072 x (8x128x256) /
# (6x1024x1024) = 5461), boundary width 2 instead of 4 (the demo images are
# 1/8 of Cityscapes' size), the demo schedule.
#
#   python tools/train.py configs/siam/pidnet-s_siam_demo_cityscapes.py
#   python tools/train.py configs/siam/pidnet-s_siam_demo_cityscapes.py \
#       --cfg-options model.use_siam=False        # the same student without SIAM
_base_ = [
    '../demo/_base_/demo_cityscapes.py', '../demo/_base_/demo_schedule.py',
    '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
ohem = dict(type='OhemCrossEntropy', thres=0.9, min_kept=5461)
model = dict(
    type='EncoderDecoderDistill',
    use_siam=True,  # False: PIDNet-S alone
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=_base_.crop_size,  # noqa: F821 pad after normalisation
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='PIDNet',
        in_channels=3,
        channels=32,
        ppm_channels=96,
        num_stem_blocks=2,
        num_branch_blocks=3,
        align_corners=False,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU', inplace=True),
        init_cfg=None),
    decode_head=dict(
        type='PIDHead',
        in_channels=128,
        channels=128,
        num_classes=8,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU', inplace=True),
        align_corners=True,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False,
                 loss_weight=0.4),  # P branch
            dict(ohem, loss_weight=1.0),  # I (main) branch
            dict(type='BoundaryLoss', loss_weight=20.0),  # D branch
            dict(ohem, loss_weight=1.0),  # I branch on boundaries
        ]),
    siam_head=dict(
        type='VitGuidanceHead',
        teacher_config='configs/demo/segformer_mit-b0_demo_cityscapes.py',
        teacher_checkpoint='demo_output/teacher/segformer_mit-b0_teacher.pth',
        student_taps=dict(
            decoder=dict(index=1, channels=128),
            stage3=dict(
                module='backbone.i_branch_layers.1',
                port='input',
                channels=128),
            stage4=dict(
                module='backbone.i_branch_layers.2',
                port='input',
                channels=256)),
        loss_decode=dict(
            type='AlignmentLoss', loss_weight=[3, 15, 15, 15], tau=4.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# PIDHead's boundary branch learns the label edges: GenerateEdge before
# packing (the rest is the demo's training pipeline)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=_base_.img_scale,  # noqa: F821
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=_base_.crop_size,  # noqa: F821
         cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateEdge', edge_width=2),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
