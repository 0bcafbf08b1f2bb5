# Your own dataset in a plain folder layout (shared by the teacher and the
# SCTNet configs of this folder; see docs/custom_dataset.md).
#
#   <data_root>/img_dir/train/xxx.jpg     <data_root>/ann_dir/train/xxx.png
#   <data_root>/img_dir/val/yyy.jpg       <data_root>/ann_dir/val/yyy.png
#
# A label PNG is single-channel (8-bit), the same size as its image, and
# holds for every pixel the INDEX of its class in `classes` below
# (0 .. len(classes)-1) or 255 for "ignore" (unlabelled, borders). It is not
# a colour image and not the original ids of some other dataset: remap
# those first (docs/custom_dataset.md, section 1). Check with
#   python tools/check_dataset.py configs/custom/sctnet-s_custom.py
#
# ---- the settings to edit ------------------------------------------------
data_root = 'data/my_dataset'
img_suffix = '.jpg'  # image file ending
seg_map_suffix = '.png'  # label file ending (same stem as the image)
# class names, in label-index order: pixel value k means classes[k]
classes = ('road', 'sidewalk', 'building', 'pole', 'vegetation', 'sky',
           'person', 'car')
# one RGB colour per class, for overlays (tools/inference.py, --show-dir)
palette = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [153, 153, 153],
           [107, 142, 35], [70, 130, 180], [220, 20, 60], [0, 0, 142]]
img_scale = (2048, 512)  # (w, h): training rescale base and test size
crop_size = (512, 512)  # (h, w) training crops
batch_size = 8  # training images per GPU
num_workers = 4  # data loading processes per GPU
# ---- end of the settings to edit -----------------------------------------

dataset_type = 'BaseSegDataset'
metainfo = dict(classes=classes, palette=palette)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
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
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        reduce_zero_label=False,
        ignore_index=255,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    persistent_workers=num_workers > 0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        reduce_zero_label=False,
        ignore_index=255,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
