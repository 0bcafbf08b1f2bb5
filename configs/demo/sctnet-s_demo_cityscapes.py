# The demo's student: SCTNet-S trained with SIAM from the demo teacher
# (configs/demo/segformer_mit-b0_demo_cityscapes.py, converted with
# tools/pth_convert.py). Same model as the official SCTNet-S configs, with:
# * a MiT-B0 teacher instead of MiT-B2 (the SIAM projections follow the
#   teacher's widths: stage 3 160, stage 4 256, decoder 4 x 128 = 512);
# * 8 classes (the street classes of the demo data), BN instead of SyncBN;
# * no ImageNet initialisation (nothing can be downloaded here);
# * a short schedule on 128x256 crops.
#
#   python tools/train.py configs/demo/sctnet-s_demo_cityscapes.py
#   python tools/train.py configs/demo/sctnet-s_demo_cityscapes.py \
#       --cfg-options model.use_siam=False        # the ablation without SIAM
_base_ = [
    '../_base_/models/sctnet-s.py', './_base_/demo_cityscapes.py',
    './_base_/demo_schedule.py', '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
teacher_checkpoint = 'demo_output/teacher/segformer_mit-b0_teacher.pth'
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),  # noqa: F821
    backbone=dict(norm_cfg=norm_cfg, init_cfg=None),
    decode_head=dict(num_classes=8, norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
    siam_head=dict(
        teacher_checkpoint=teacher_checkpoint,
        teacher_backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
        teacher_head=dict(
            in_channels=[32, 64, 160, 256], channels=128,
            norm_cfg=norm_cfg)))
