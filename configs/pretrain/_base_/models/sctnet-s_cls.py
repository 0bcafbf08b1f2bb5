# SCTNet-S (c=32, DAPPM 64) as an MMPretrain image classifier.
_base_ = ['./sctnet-b_cls.py']
model = dict(
    backbone=dict(base_channels=32, spp_channels=64),
    head=dict(in_channels=12 * 32))
