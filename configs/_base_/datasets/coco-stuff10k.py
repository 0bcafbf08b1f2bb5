# COCO-Stuff-10K (171 classes), official SCTNet setting: MMSegmentation's
# COCO-Stuff-10K base (layout, reduce_zero_label, 4 images and 4 workers
# per GPU) with random rescale 0.5-2.0 of 2560x640 (MMSegmentation:
# 2048x512), 640x640 crops (512x512), test at 2560x640 (2048x512).
# Labels: *_labelTrainIds.png written by tools/dataset_converters/
# coco_stuff10k.py (0 = unlabeled, hence reduce_zero_label=True).
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/coco-stuff10k.py']
crop_size = (640, 640)  # (h, w)
test_scale = (2560, 640)  # (w, h)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2560, 640),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
