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
# Resize at MMSegmentation's ratios of test_scale, both horizontal flips
# (MMSegmentation's base scales the original image instead). A leaf that
# changes the test scale restates this, or sets tta_pipeline = None and
# tools/test.py builds it from the test pipeline and img_ratios.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=p, direction='horizontal')
                for p in (0., 1.)
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
