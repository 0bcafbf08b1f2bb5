# SCTNet-B (c=64, DAPPM 128) with its training-only MiT-B3 SegFormer teacher.
#
# Leaf configs set decode_head.num_classes (the auxiliary head and the
# teacher head follow it) and siam_head.teacher_checkpoint. The segmentor
# places siam_head after the auxiliary head, so parameter names are the
# official ones: auxiliary_head.0.* (AU_SCTHead), auxiliary_head.1.*
# (VitGuidanceHead: projections, teacher_backbone, teacher_head).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # reverted to BN when
# training is not distributed (MMEngine) or runs on CPU (tools/train.py)
model = dict(
    type='EncoderDecoder_Distill',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # Training crops smaller than the crop size are padded here, AFTER
        # normalisation (image 0, label 255 = ignored), as the official
        # Normalize -> Pad pipeline does. Every leaf config sets
        # size=crop_size; test images are never padded (no test_cfg).
        pad_val=0,
        seg_pad_val=255),
    use_siam=True,  # False: plain student training (the SIAM ablation)
    backbone=dict(
        type='SCTNet',
        base_channels=64,
        spp_channels=128,
        drop_path_rate=0.1,
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrained/SCT-B_Pretrain.pth')),
    decode_head=dict(
        type='SCTHead',
        in_channels=256,
        channels=256,
        in_index=0,  # x_out, 1/8
        dropout_ratio=0.0,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='AU_SCTHead',
        in_channels=128,
        channels=128,
        in_index=1,  # stage 2, 1/8
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    siam_head=dict(
        type='VitGuidanceHead',
        base_channels=64,
        in_index=(0, 2, 3),  # x_out, stage 3, stage 4
        teacher_checkpoint=None,
        teacher_backbone=dict(
            type='MixVisionTransformer',
            in_channels=3,
            embed_dims=64,
            num_stages=4,
            num_layers=[3, 4, 18, 3],  # MiT-B3
            num_heads=[1, 2, 5, 8],
            patch_sizes=[7, 3, 3, 3],
            sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3),
            mlp_ratio=4,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.1),
        teacher_head=dict(
            type='SegformerHead',
            in_channels=[64, 128, 320, 512],
            in_index=[0, 1, 2, 3],
            channels=256,
            dropout_ratio=0.1,
            norm_cfg=norm_cfg,
            align_corners=False),
        loss_decode=dict(
            type='AlignmentLoss', loss_weight=[3, 15, 15, 15], tau=4.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
