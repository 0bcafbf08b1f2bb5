# The demo student (configs/demo/sctnet-s_demo_cityscapes.py) with online
# hard example mining (OHEM) in the decode head: per batch, the
# cross-entropy is taken only over the pixels whose predicted probability
# of their true class is below thresh, but at least min_kept pixels per
# image (the hardest); the easy pixels of large classes stop dominating.
# min_kept = 6000 is about 18% of a 128x256 training crop, the share of
# MMSegmentation's Cityscapes OHEM configs (100000 of a 512x1024 crop).
# The auxiliary head keeps its plain cross-entropy.
#
#   python tools/train.py configs/custom/sctnet-s_ohem_demo.py
_base_ = ['../demo/sctnet-s_demo_cityscapes.py']
model = dict(
    decode_head=dict(
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=6000)))
