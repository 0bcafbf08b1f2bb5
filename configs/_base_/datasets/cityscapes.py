# Cityscapes, SCTNet Seg50 (official): MMSegmentation's Cityscapes base
# (data root, layout, classes, evaluator) with the official differences:
# random rescale 0.25-1.5 of 2048x1024 (MMSegmentation: 0.5-2.0), 8 images
# and 4 workers per GPU (2 and 2), test at 1024x512 (2048x1024).
# Expects data/cityscapes/{leftImg8bit,gtFine}/{train,val} with
# *_gtFine_labelTrainIds.png (docs/dataset_prepare.md).
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
crop_size = (512, 1024)  # (h, w)
test_scale = (1024, 512)  # (w, h)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.25, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
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
    batch_size=8, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
