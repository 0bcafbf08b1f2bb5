# The demo dataset: procedural street scenes written by tools/demo.py
# (mmseg_sctnet.datasets.make_cityscapes) in the Cityscapes on-disk layout,
# read by MMSegmentation's own CityscapesDataset.
#
# Class list: the scenes contain 8 of the 19 Cityscapes classes. Passing
# them as ``metainfo.classes`` makes CityscapesDataset build its label map
# (trainId -> index in this list, every other trainId -> 255, ignored), so
# models predict 8 classes and the mIoU is the mean over the 8 classes that
# really occur, not a 19-class mean diluted by 11 classes that never appear.
_base_ = ['../../_base_/datasets/cityscapes.py']
data_root = 'data/demo_cityscapes/'
street_classes = ('road', 'sidewalk', 'building', 'pole', 'vegetation', 'sky',
                  'person', 'car')
metainfo = dict(classes=street_classes)
img_scale = (256, 128)  # (w, h) of the generated images
crop_size = (128, 256)  # (h, w)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# --tta (tools/test.py and MMSegmentation's own tools/test.py): the test
# Resize at img_ratios of its scale, both horizontal flips, then the rest of
# the test pipeline (MMSegmentation's base scales the original image
# instead). A leaf that changes test_pipeline restates this, or sets
# tta_pipeline = None and tools/test.py builds it the same way.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    test_pipeline[0],
    dict(type='ScaleFlipTTA', resize=test_pipeline[1], img_ratios=img_ratios,
         then=test_pipeline[2:])
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
