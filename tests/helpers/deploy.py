"""A tiny trained-looking setup for the deployment tests: generated
Cityscapes-layout data (the real dataset class reads it), a config that
inherits the demo config (8 street classes) and points at it, and a
checkpoint with random, activation-preserving weights."""
import os.path as osp

import torch

from .models import ROOT, randomize_state

DEMO_CONFIG = osp.join(ROOT, 'configs', 'demo', 'sctnet-s_demo_cityscapes.py')
SIZE = (64, 128)  # (h, w) of the generated images and of the exports


def write_config(path: str, data_root: str) -> str:
    """A leaf config: the demo config on ``data_root`` at :data:`SIZE`,
    no dataloader workers."""
    pipeline = ("[dict(type='LoadImageFromFile'), "
                f"dict(type='Resize', scale=({SIZE[1]}, {SIZE[0]}), "
                "keep_ratio=True), dict(type='LoadAnnotations'), "
                "dict(type='PackSegInputs')]")
    with open(path, 'w') as f:
        f.write(f'_base_ = [{DEMO_CONFIG!r}]\n'
                'train_dataloader = dict(num_workers=0, '
                'persistent_workers=False, dataset=dict('
                f'data_root={data_root!r}))\n'
                'val_dataloader = dict(num_workers=0, '
                'persistent_workers=False, dataset=dict('
                f'data_root={data_root!r}, pipeline={pipeline}))\n'
                'test_dataloader = val_dataloader\n')
    return path


def write_checkpoint(path: str, config: str, seed: int = 0) -> str:
    """Random weights that keep activations alive (BN statistics too)."""
    from mmseg_sctnet.deploy import build_inference_model
    model = build_inference_model(config)
    state = randomize_state(model.state_dict(), seed=seed)
    torch.save(dict(state_dict=state, meta={}), path)
    return path


def make_setup(root: str, n_train: int = 4, n_val: int = 2) -> dict:
    """Data, config and checkpoint under ``root``."""
    from mmseg_sctnet.datasets import make_cityscapes
    data = osp.join(root, 'city') + '/'
    make_cityscapes(data, n_train=n_train, n_val=n_val, size=SIZE, seed=5)
    config = write_config(osp.join(root, 'cfg.py'), data)
    ckpt = write_checkpoint(osp.join(root, 'model.pth'), config)
    return dict(data=data, config=config, ckpt=ckpt)
