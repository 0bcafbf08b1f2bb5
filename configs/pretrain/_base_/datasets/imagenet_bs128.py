# ImageNet-1k at 224x224, MMPretrain's DeiT/Swin pipeline (RandomResizedCrop,
# flip, RandAugment (2 ops, magnitude 9 +- 0.5), RandomErasing 0.25; test:
# short side 256, centre crop 224), 128 images per GPU.
# Layout: data/imagenet/{train,val}/<class>/*.JPEG (or meta/{train,val}.txt),
# see MMPretrain's ImageNet dataset.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py']
train_dataloader = dict(batch_size=128, num_workers=8)
val_dataloader = dict(batch_size=128, num_workers=8)
test_dataloader = dict(batch_size=128, num_workers=8)
