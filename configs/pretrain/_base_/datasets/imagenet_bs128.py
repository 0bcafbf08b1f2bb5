# ImageNet-1k at 224x224, 128 images per GPU: MMPretrain's DeiT-style
# pipeline as its EfficientFormer configs use it (RandomResizedCrop, flip,
# RandAugment (2 ops, magnitude 9 +- 0.5), RandomErasing 0.25; test: short
# side 248, centre crop 224).
# Layout: data/imagenet/{train,val}/<class>/*.JPEG (or meta/{train,val}.txt),
# see MMPretrain's ImageNet dataset.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs128_poolformer_small_224.py']
train_dataloader = dict(num_workers=8)
val_dataloader = dict(num_workers=8)
test_dataloader = dict(num_workers=8)
