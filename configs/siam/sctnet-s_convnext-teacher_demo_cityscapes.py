# The demo's SCTNet-S (configs/demo/sctnet-s_demo_cityscapes.py) distilled
# with SIAM from the convolutional UPerNet teacher
# (configs/siam/upernet_convnext-atto_demo_cityscapes.py) instead of the
# MiT-B0 SegFormer. The teacher is described by its own training config;
# the SIAM projections follow its widths: stage 3 -> 160, stage 4 -> 320,
# x_out -> 256 (UPerHead's 4 x 64 FPN outputs before fpn_bottleneck, which
# SDHA runs with the teacher's classifier).
#
#   python tools/train.py configs/siam/sctnet-s_convnext-teacher_demo_cityscapes.py
#   python tools/train.py configs/siam/sctnet-s_convnext-teacher_demo_cityscapes.py \
#       --cfg-options model.siam_head.teacher_checkpoint=work_dirs/upernet_convnext-atto_demo_cityscapes/iter_300.pth
#       # an unconverted MMSegmentation checkpoint of the teacher loads too
_base_ = ['../demo/sctnet-s_demo_cityscapes.py']
model = dict(
    siam_head=dict(
        teacher_config='configs/siam/upernet_convnext-atto_demo_cityscapes.py',
        teacher_checkpoint='demo_output/teacher_convnext/'
        'upernet_convnext-atto_teacher.pth',
        teacher_backbone=None,
        teacher_head=None))
