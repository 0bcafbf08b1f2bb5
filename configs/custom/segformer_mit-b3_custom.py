# The paper's teacher for SCTNet-B: SegFormer MiT-B3 (pair it with
# sctnet-b_custom.py). Everything else as segformer_mit-b0_custom.py.
#
#   python tools/train.py configs/custom/segformer_mit-b3_custom.py
#   python tools/pth_convert.py \
#       work_dirs/segformer_mit-b3_custom/iter_160000.pth \
#       pretrained/Teacher_SegFormer_B3_custom.pth
_base_ = ['./segformer_mit-b2_custom.py']
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b3_20220624-13b1141c.pth'  # noqa
model = dict(
    backbone=dict(
        num_layers=[3, 4, 18, 3],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
