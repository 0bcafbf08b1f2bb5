"""Backbone pretraining (configs/pretrain, MMPretrain) end to end.

A few iterations of the SCTNet-S pretraining config through tools/train.py
on a generated ImageNet-layout folder (MMPretrain's own ``ImageNet``
dataset reads it), top-1 with tools/test.py, the export with
tools/export_backbone.py (EMA weights), and the SCTNet-S Cityscapes config
loading the export with every backbone tensor matched, then training one
iteration.
"""
import os.path as osp

import pytest
import torch
from helpers.tools import load_tool
from helpers.train import small_run_options
from mmengine.registry import DefaultScope

from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.io.errors import CheckpointMismatchError
from mmseg_sctnet.datasets.synthetic_cls import (class_names,
                                                 make_imagenet_layout)
from mmseg_sctnet.io.errors import PathError
from mmseg_sctnet.engine.training_run import (build_train_config,
                                              build_train_runner,
                                              last_checkpoint)
from mmseg_sctnet.pretrain import export_backbone

PRETRAIN = {
    'S': 'configs/pretrain/sctnet-s_8xb128_in1k.py',
    'B': 'configs/pretrain/sctnet-b_8xb128_in1k.py',
}
GENERATED = 'configs/pretrain/sctnet-s_generated-8cls.py'
SEG_S = 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py'
SEG_B = 'configs/sctnet/cityscapes/sctnet-b_seg50_8x2_160k_cityscapes.py'
N_CLS = 4


def pretrain_options(data_root, n_classes=N_CLS, size=32, batch=8):
    """--cfg-options for a tiny CPU run of a configs/pretrain leaf (keys
    the config does not have are written with a leading '+')."""
    classes = '[' + ','.join(class_names(n_classes)) + ']'
    opts = [
        f'model.head.num_classes={n_classes}',
        f'data_preprocessor.num_classes={n_classes}',
        'train_cfg.max_epochs=1',
        # 1 warm-up epoch, the cosine part after the end of this short run
        'param_scheduler.0.end=1',
        'param_scheduler.1.begin=1',
        '+param_scheduler.1.end=2',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.save_best=None',
        '+train_cfg.val_begin=2',  # no validation in this 1-epoch run
        'randomness.seed=0',
        f'train_dataloader.batch_size={batch}',
        f'train_dataloader.dataset.pipeline.1.scale={size}',
        f'val_dataloader.dataset.pipeline.1.scale={size + size // 8}',
        f'val_dataloader.dataset.pipeline.2.crop_size={size}',
        'val_evaluator.topk=(1,)',
    ]
    for dl in ('train_dataloader', 'val_dataloader'):
        opts += [
            f'{dl}.dataset.data_root={data_root}',
            f'+{dl}.dataset.metainfo.classes={classes}',
            f'{dl}.num_workers=0',
        ]
    return opts


@pytest.fixture(scope='module')
def mmseg_scope_kept():
    """The runners below switch MMEngine's default scope to mmpretrain;
    the rest of the suite builds with mmseg's."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory, mmseg_scope_kept):
    """A 2-iteration SCTNet-S pretraining run; its runner and checkpoint."""
    tmp = tmp_path_factory.mktemp('pretrain')
    data = make_imagenet_layout(
        str(tmp / 'imagenet'),
        n_classes=N_CLS,
        n_per_class=4,
        size=32,
        n_val_per_class=2)
    work = str(tmp / 'work')
    train = load_tool('train.py')
    runner = train.main([PRETRAIN['S'], '--work-dir', work, '--cfg-options'] +
                        pretrain_options(data))
    ckpt = osp.join(work, 'epoch_1.pth')
    assert last_checkpoint(work) == ckpt
    return dict(runner=runner, ckpt=ckpt, data=data, tmp=tmp)


def test_pretraining_runs_with_the_recipe(pretrained):
    runner = pretrained['runner']
    assert runner.iter == 2  # 16 images, batch 8, one epoch
    model = runner.model
    assert type(model).__name__ == 'ImageClassifier'
    assert type(model.backbone).__name__ == 'SCTNet'
    assert model.backbone.base_channels == 32
    # the recipe: AdamW, Mixup + CutMix, label smoothing, EMA
    assert type(runner.optim_wrapper.optimizer).__name__ == 'AdamW'
    augments = model.data_preprocessor.batch_augments.augments
    assert [type(a).__name__ for a in augments] == ['Mixup', 'CutMix']
    assert type(model.head.loss_module).__name__ == 'LabelSmoothLoss'
    hooks = [type(h).__name__ for h in runner.hooks]
    assert {'EMAHook', 'NonFiniteLossHook',
            'AtomicCheckpointHook'} <= set(hooks)
    # lr scaled linearly to the real batch (8 of the recipe's 1024)
    assert runner.optim_wrapper.param_groups[0]['initial_lr'] == \
        pytest.approx(1e-3 * 8 / 1024)
    # MMPretrain's ImageNet dataset read the generated class folders
    ds = runner.train_dataloader.dataset
    assert type(ds).__name__ == 'ImageNet' and len(ds) == 16
    assert list(ds.metainfo['classes']) == class_names(N_CLS)
    assert sorted(ds.get_gt_labels().tolist()) == sorted(
        list(range(N_CLS)) * 4)


def test_top1_with_tools_test(pretrained):
    res = load_tool('test.py').main([
        PRETRAIN['S'], pretrained['ckpt'], '--work-dir',
        str(pretrained['tmp'] / 'test'), '--cfg-options'
    ] + [
        o.replace('val_', 'test_')
        for o in pretrain_options(pretrained['data'])
        if o.lstrip('+').startswith(
            ('val_', 'model.head', 'data_preprocessor'))
    ])
    top1 = res['metrics']['accuracy/top1']
    assert 0.0 <= top1 <= 100.0
    assert top1 * 8 / 100 == pytest.approx(round(top1 * 8 / 100))  # k of 8


def test_export_is_the_ema_backbone(pretrained, tmp_path):
    out = str(tmp_path / 'SCT-S_Pretrain.pth')
    res = load_tool('export_backbone.py').main([pretrained['ckpt'], out])
    assert res['weights'] == 'ema'
    exported = safe_torch_load(out)['state_dict']
    hook = next(h for h in pretrained['runner'].hooks
                if type(h).__name__ == 'EMAHook')
    ema = hook.ema_model.module.backbone.state_dict()
    raw = pretrained['runner'].model.backbone.state_dict()
    assert list(exported) == list(ema)
    assert all(torch.equal(exported[k], ema[k]) for k in ema)
    # the raw weights are another export, and they differ from the EMA ones
    raw_out = str(tmp_path / 'raw.pth')
    assert export_backbone(
        pretrained['ckpt'], raw_out, weights='raw')['weights'] == 'raw'
    exported_raw = safe_torch_load(raw_out)['state_dict']
    assert all(torch.equal(exported_raw[k], raw[k]) for k in raw)
    assert not all(torch.equal(exported[k], raw[k]) for k in raw)


def test_segmentation_config_loads_the_export(pretrained, tmp_path):
    """SCTNet-S Cityscapes config with strict pretrained loading: every
    backbone tensor from the export, then one training iteration."""
    from mmseg_sctnet.datasets import make_cityscapes
    out = str(tmp_path / 'SCT-S_Pretrain.pth')
    export_backbone(pretrained['ckpt'], out)
    exported = safe_torch_load(out)['state_dict']
    data = make_cityscapes(
        str(tmp_path / 'city') + '/',
        n_train=2,
        n_val=1,
        size=(64, 128),
        seed=5)
    opts = [
        o for o in small_run_options(data, crop=(64, 64), iters=1)
        if not o.startswith('model.backbone.init_cfg')
    ] + [
        f'model.backbone.init_cfg.checkpoint={out}',
        '+model.backbone.init_cfg.strict=True',  # a key the config lacks
        'model.use_siam=False',
        'train_cfg.val_interval=100'
    ]
    args = load_tool('train.py').parse_args(
        [SEG_S, '--work-dir',
         str(tmp_path / 'seg'), '--cfg-options'] + opts)
    runner = build_train_runner(
        build_train_config(
            args.config, args.work_dir, cfg_options=args.cfg_options))
    backbone = runner.model.backbone
    backbone.init_weights()  # what the Runner does before iteration 1
    own = backbone.state_dict()
    assert set(own) == set(exported)
    assert all(torch.equal(own[k], exported[k]) for k in own)
    runner.train()
    assert runner.iter == 1
    moved = backbone.state_dict()
    assert not torch.equal(moved['conv1.0.weight'], exported['conv1.0.weight'])


@pytest.mark.parametrize('size', ['S', 'B'])
def test_every_backbone_parameter_is_trained(size, mmseg_scope_kept):
    """The neck pools x_out (stage 2 + DAPPM) and x4: the classification
    loss reaches every backbone parameter, DAPPM's included. (64x64: stage
    4 must be larger than 1x1, or its attention softmax is constant.)"""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mmseg_sctnet.pretrain.cls_neck  # noqa: F401
    cfg = Config.fromfile(PRETRAIN[size])
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(i) for i in (3, 7)]
    loss = model(x, samples, mode='loss')['loss']
    loss.backward()
    untouched = [
        n for n, p in model.backbone.named_parameters()
        if p.grad is None or not bool(p.grad.abs().sum() > 0)
    ]
    assert not untouched, untouched
    assert any(
        n.startswith('spp.') for n, _ in model.backbone.named_parameters())
    assert model.backbone.base_channels == {'S': 32, 'B': 64}[size]


def test_generated_leaf_reads_generated_data(tmp_path, mmseg_scope_kept):
    """configs/pretrain/sctnet-s_generated-8cls.py: its classes are the
    generator's, its pipeline gives 64x64 inputs, its head has 8 classes."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(GENERATED)
    assert cfg.model.head.num_classes == cfg.data_preprocessor.num_classes \
        == len(cfg.classes) == 8
    assert cfg.classes == class_names(8)
    data = make_imagenet_layout(
        str(tmp_path / 'gen'),
        n_classes=8,
        n_per_class=1,
        size=48,
        n_val_per_class=1)
    init_default_scope('mmpretrain')
    for split in ('train', 'val'):
        ds_cfg = cfg[f'{split}_dataloader'].dataset
        ds_cfg.data_root = data
        ds = DATASETS.build(ds_cfg)
        assert sorted(ds.get_gt_labels().tolist()) == list(range(8))
        sample = ds[0]
        assert tuple(sample['inputs'].shape) == (3, 64, 64)


def _fake_classifier_checkpoint(path, drop=()):
    """An ImageClassifier-like checkpoint of a random SCTNet-S backbone."""
    from mmseg_sctnet.pretrain.backbone import build_reference_backbone
    backbone = build_reference_backbone(
        dict(type='SCTNet', base_channels=32, spp_channels=64))
    state = {
        'backbone.' + k: v
        for k, v in backbone.state_dict().items() if k not in drop
    }
    state['head.layers.1.fc.weight'] = torch.zeros(4, 1024)
    torch.save(dict(state_dict=state, meta=dict(epoch=3)), path)
    return backbone.state_dict()


def test_export_refuses_a_missing_tensor(tmp_path):
    src = str(tmp_path / 'epoch_3.pth')
    _fake_classifier_checkpoint(src, drop=('spp.compression.2.weight', ))
    out = str(tmp_path / 'out.pth')
    with pytest.raises(
            CheckpointMismatchError,
            match=r"missing tensors: 1 of .*'spp\.compression\.2\.weight'"):
        export_backbone(src, out)
    assert not osp.exists(out)
    # the SCTNet-B backbone of a segmentation config: every shape differs
    with pytest.raises(CheckpointMismatchError, match='differ in shape'):
        export_backbone(_full(tmp_path), out, config=SEG_B)
    assert not osp.exists(out)


def _full(tmp_path):
    path = str(tmp_path / 'full.pth')
    _fake_classifier_checkpoint(path)
    return path


def test_export_never_overwrites_its_input(tmp_path):
    src = _full(tmp_path)
    before = open(src, 'rb').read()
    with pytest.raises(PathError, match='never writes over its input'):
        export_backbone(src, src, force=True)
    out = str(tmp_path / 'out.pth')
    open(out, 'wb').write(b'keep')
    with pytest.raises(PathError, match='--force'):
        export_backbone(src, out)
    assert open(out, 'rb').read() == b'keep'
    assert export_backbone(src, out, force=True)['weights'] == 'raw'
    assert open(src, 'rb').read() == before


def test_generated_classes_are_deterministic(tmp_path):
    a = make_imagenet_layout(
        str(tmp_path / 'a'), n_classes=3, n_per_class=2, size=(24, 40), seed=1)
    b = make_imagenet_layout(
        str(tmp_path / 'b'), n_classes=3, n_per_class=2, size=(24, 40), seed=1)
    import cv2
    names = class_names(3)
    for split, n in (('train', 2), ('val', 2)):
        for name in names:
            for i in range(n):
                rel = osp.join(split, name, f'{name}_{i:05d}.jpg')
                ia, ib = cv2.imread(osp.join(a, rel)), cv2.imread(
                    osp.join(b, rel))
                assert ia.shape == (24, 40, 3) and (ia == ib).all()
    with pytest.raises(ValueError, match='n_classes'):
        class_names(25)
