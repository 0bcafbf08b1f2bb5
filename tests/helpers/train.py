"""Small schedules and a MiT-B0 teacher for the end-to-end tool tests
(train/test/demo/dist/converters)."""
import torch

# A MiT-B0-sized teacher (the official S/B teachers are MiT-B2/B3): the
# SIAM projections follow its widths (stage 3: 160, stage 4: 256).
B0_BACKBONE = dict(
    type='MixVisionTransformer',
    in_channels=3,
    embed_dims=32,
    num_stages=4,
    num_layers=[2, 2, 2, 2],
    num_heads=[1, 2, 5, 8],
    patch_sizes=[7, 3, 3, 3],
    sr_ratios=[8, 4, 2, 1],
    out_indices=(0, 1, 2, 3),
    mlp_ratio=4,
    qkv_bias=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.0)


def write_segformer_teacher(path, num_classes, channels=256, seed=0):
    """A randomly initialised MiT-B0 SegFormer saved the way MMSegmentation
    saves checkpoints (``state_dict`` with ``backbone.*``/``decode_head.*``
    and ``meta``), to be converted with tools/pth_convert.py."""
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type='EncoderDecoder',
            backbone=B0_BACKBONE,
            decode_head=dict(
                type='SegformerHead',
                in_channels=[32, 64, 160, 256],
                in_index=[0, 1, 2, 3],
                channels=channels,
                dropout_ratio=0.1,
                num_classes=num_classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')))
    model.init_weights()
    torch.save(dict(meta=dict(iter=1), state_dict=model.state_dict()), path)
    return path


def b0_teacher_options(teacher_file, channels=256):
    """--cfg-options that give a leaf config the MiT-B0 teacher."""
    return [
        f'model.siam_head.teacher_checkpoint={teacher_file}',
        'model.siam_head.teacher_backbone.embed_dims=32',
        'model.siam_head.teacher_backbone.num_layers=[2,2,2,2]',
        'model.siam_head.teacher_head.in_channels=[32,64,160,256]',
        f'model.siam_head.teacher_head.channels={channels}',
    ]


def small_run_options(data_root, crop=(64, 64), test_scale=(128, 64),
                      iters=2, batch=2):
    """--cfg-options for a tiny CPU run of an official leaf config.

    ``crop`` is (h, w); ``test_scale`` (w, h). The pipelines of every
    dataset base have RandomResize at index 2 and RandomCrop at 3 in
    training, Resize at 1 in testing; the data preprocessor pads the crops
    to ``crop``.
    """
    h, w = crop
    opts = [
        'model.backbone.init_cfg=None',  # no ImageNet file here
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1',
        f'train_dataloader.batch_size={batch}',
        f'train_dataloader.dataset.pipeline.2.scale=({2 * w},{h})',
        'train_dataloader.dataset.pipeline.2.ratio_range=(0.75,1.25)',
        f'train_dataloader.dataset.pipeline.3.crop_size=({h},{w})',
        f'model.data_preprocessor.size=({h},{w})',
    ]
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{dl}.dataset.data_root={data_root}',
            f'{dl}.num_workers=0',
            f'{dl}.persistent_workers=False',
        ]
    for dl in ('val_dataloader', 'test_dataloader'):
        opts.append(
            f'{dl}.dataset.pipeline.1.scale=({test_scale[0]},{test_scale[1]})')
    return opts
