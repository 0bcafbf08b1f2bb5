"""``tools/train.py --auto-scale-lr``: every training config names the
total batch its learning rate is for (``auto_scale_lr.base_batch_size``),
and MMEngine scales every learning rate by real total batch / base batch.

The expected base batches are read from the official config names (``8x2``
= 8 images x 2 GPUs, ``8xb128`` = 8 GPUs x 128 images) and, for the configs
without such a name, from their documented recipes (a config without either
has those of the config it inherits): not from the configs' values.
"""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from helpers.configs import SHIPPED, config_id
from helpers.models import ROOT
from helpers.tools import load_tool

from mmseg_sctnet.apis.train import train
from mmseg_sctnet.engine.training_run import (build_train_config,
                                              lr_scaling_note)

TRAINING_CONFIGS = sorted(
    set(SHIPPED + glob.glob(osp.join(ROOT, 'configs/sctnet/*/*.py')) +
        glob.glob(osp.join(ROOT, 'configs/pretrain/*.py'))))
# recipes without the batch in the name: (total batch, images per process);
# every *_demo* config trains as the demo does: one process x 8 images
DEMO = (8, 8)
RECIPES = {
    # SCTNet on a custom dataset: the official ADE20K lr, 4 GPUs x 8
    'sctnet-s_custom.py': (32, 8),
    'sctnet-b_custom.py': (32, 8),
    'sctnet-s_mit-b2-teacher_custom.py': (32, 8),
    # MMSegmentation's SegFormer recipe, 8 GPUs x 2 (custom_dataset.py
    # itself loads 8 images per process)
    'segformer_mit-b0_custom.py': (16, 8),
    'segformer_mit-b2_custom.py': (16, 8),
    'segformer_mit-b3_custom.py': (16, 8),
    # pretraining on generated data: lr 1e-3 at batch 32, one process
    'sctnet-s_generated-8cls.py': (32, 32),
}


def expected_batch(path):
    """(base batch, images per process) of a config, from its name, else
    from the first of its ``_base_`` files that has one."""
    name = osp.basename(path)
    m = re.search(r'_(\d+)x(\d+)_160k', name)  # images x GPUs (official)
    if m:
        return int(m.group(1)) * int(m.group(2)), int(m.group(1))
    m = re.search(r'_(\d+)xb(\d+)_', name)  # GPUs x images (MMPretrain)
    if m:
        return int(m.group(1)) * int(m.group(2)), int(m.group(2))
    if '_demo' in name:
        return DEMO
    if name in RECIPES:
        return RECIPES[name]
    bases = re.search(r'^_base_\s*=\s*\[(.*?)\]', open(path).read(),
                      re.S | re.M)
    for base in re.findall(r"'([^':]+\.py)'", bases.group(1) if bases else ''):
        try:
            return expected_batch(osp.join(osp.dirname(path), base))
        except KeyError:
            continue
    raise KeyError(f'{name}: no documented batch')


@pytest.mark.parametrize('config', TRAINING_CONFIGS, ids=config_id)
def test_every_training_config_names_its_base_batch(config, tmp_path):
    base, per_process = expected_batch(config)
    cfg = build_train_config(
        config, work_dir=str(tmp_path / 'w'), auto_scale_lr=True)
    assert dict(cfg.auto_scale_lr) == dict(enable=True, base_batch_size=base)
    assert cfg.train_dataloader.batch_size == per_process
    # without the flag the config trains with its own lr, unscaled, except
    # the ImageNet pretraining recipe, which always scales (MMPretrain's)
    plain = Config.fromfile(config)
    assert plain.auto_scale_lr.enable == ('_in1k' in config)


def test_one_process_run_with_another_batch_gets_the_scaled_lr(
        tiny_training, tmp_path):
    """The tiny config: lr 1e-3 (heads x10), 2 images per process, the
    Cityscapes base batch 16 -> every lr x 2/16 in the optimizer that
    trains, and the rule in one log line."""
    work = str(tmp_path / 'scaled')
    runner = train(
        tiny_training.cfg,
        work_dir=work,
        cfg_options={'train_cfg.max_iters': 1},
        auto_scale_lr=True)
    factor = 1 * 2 / 16
    groups = runner.optim_wrapper.optimizer.param_groups
    lrs = {g['initial_lr'] for g in groups}
    assert sorted(lrs) == pytest.approx([1e-3 * factor, 1e-2 * factor],
                                        rel=1e-12)
    (log, ) = glob.glob(osp.join(work, '*', '*.log'))
    text = open(log).read()
    assert ('auto_scale_lr: the lr is for a total batch of 16 '
            '(auto_scale_lr.base_batch_size), this run has 1 process(es) x '
            '2 images = 2: every learning rate x 2/16 = 0.125, lr 0.001 -> '
            '0.000125.') in text
    assert 'Scaling the original LR by 0.125' in text  # MMEngine's own


def test_lr_scaling_note():
    cfg = Config(
        dict(
            auto_scale_lr=dict(enable=True, base_batch_size=16),
            train_dataloader=dict(batch_size=8),
            optim_wrapper=dict(optimizer=dict(type='AdamW', lr=4e-4))))
    assert lr_scaling_note(cfg, 4) == (
        'auto_scale_lr: the lr is for a total batch of 16 '
        '(auto_scale_lr.base_batch_size), this run has 4 process(es) x 8 '
        'images = 32: every learning rate x 32/16 = 2, lr 0.0004 -> 0.0008.')
    cfg.auto_scale_lr.enable = False
    assert lr_scaling_note(cfg, 2) is None  # the official batch
    assert lr_scaling_note(cfg, 1) == (
        'This run has a total batch of 1 process(es) x 8 images = 8; the lr '
        '0.0004 is for 16 (auto_scale_lr.base_batch_size). --auto-scale-lr '
        'scales it linearly (x0.5: 0.0002).')


def test_config_without_base_batch_is_refused(tmp_path, capsys):
    leaf = tmp_path / 'leaf.py'
    leaf.write_text(
        f"_base_ = [{osp.join(ROOT, SHIPPED[0])!r}]\n"
        "auto_scale_lr = dict(_delete_=True, enable=False)\n")
    before = leaf.read_bytes()
    with pytest.raises(SystemExit) as e:
        load_tool('train').main(
            [str(leaf), '--work-dir', str(tmp_path / 'w'), '--auto-scale-lr'])
    assert e.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith('error')] == [
        f'error: --auto-scale-lr: {leaf} has no '
        'auto_scale_lr.base_batch_size (found None): the total batch (GPUs '
        'x train_dataloader.batch_size) its learning rate is tuned for. Add '
        'auto_scale_lr = dict(base_batch_size=N) to the config, or drop '
        '--auto-scale-lr.'
    ]
    assert leaf.read_bytes() == before
    assert not osp.exists(tmp_path / 'w')
