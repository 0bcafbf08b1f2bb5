# DDRNet-23-slim (MMSegmentation 1.2.2's DDRNet + DDRHead, as in its
# ddrnet_23-slim config) as a SIAM student of the demo's SegFormer teacher
# (configs/demo/segformer_mit-b0_demo_cityscapes.py, converted by
# tools/demo.py), on the demo data: 8 street classes, 128x256 crops, the
# demo's schedule (configs/demo/_base_/demo_schedule.py).
#
# SIAM taps (docs/siam.md, "Distil your own student from your own teacher"):
# * decoder: backbone output 1 in training (DDRNet returns the stage-3
#   spatial feature and the final x_s + x_c; the second, 1/8, 4c = 128
#   channels, is what DDRHead classifies: SCTNet's x_out);
# * stage 3 / stage 4: the low-resolution (context) branch at 1/16 (128
#   channels) and 1/32 (256), after the bilateral fusion with the spatial
#   branch: the inputs of context_branch_layers.1 and .2 (no backbone
#   output; read by forward hooks of the segmentor).
# Changes to MMSegmentation's recipe: BN instead of SyncBN, no ImageNet
# initialisation (nothing can be downloaded here), 8 classes without the
# Cityscapes class weights, OHEM's min_kept scaled with the pixels of a
# batch (131072 x (8x128x256) / (6x1024x1024) = 5461), the demo schedule.
#
#   python tools/train.py configs/siam/ddrnet-23-slim_siam_demo_cityscapes.py
#   python tools/train.py configs/siam/ddrnet-23-slim_siam_demo_cityscapes.py \
#       --cfg-options model.use_siam=False        # the same student without SIAM
_base_ = [
    '../demo/_base_/demo_cityscapes.py', '../demo/_base_/demo_schedule.py',
    '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
ohem = dict(type='OhemCrossEntropy', thres=0.9, min_kept=5461)
model = dict(
    type='EncoderDecoderDistill',
    use_siam=True,  # False: DDRNet-23-slim alone
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=_base_.crop_size,  # noqa: F821 pad after normalisation
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='DDRNet',
        in_channels=3,
        channels=32,
        ppm_channels=128,
        norm_cfg=norm_cfg,
        align_corners=False,
        init_cfg=None),
    decode_head=dict(
        type='DDRHead',
        in_channels=32 * 4,
        channels=64,
        dropout_ratio=0.,
        num_classes=8,
        align_corners=False,
        norm_cfg=norm_cfg,
        loss_decode=[
            dict(ohem, loss_weight=1.0),  # context (main) logits
            dict(ohem, loss_weight=0.4),  # spatial (auxiliary) logits
        ]),
    siam_head=dict(
        type='VitGuidanceHead',
        teacher_config='configs/demo/segformer_mit-b0_demo_cityscapes.py',
        teacher_checkpoint='demo_output/teacher/segformer_mit-b0_teacher.pth',
        student_taps=dict(
            decoder=dict(index=1, channels=128),
            stage3=dict(
                module='backbone.context_branch_layers.1',
                port='input',
                channels=128),
            stage4=dict(
                module='backbone.context_branch_layers.2',
                port='input',
                channels=256)),
        loss_decode=dict(
            type='AlignmentLoss', loss_weight=[3, 15, 15, 15], tau=4.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
