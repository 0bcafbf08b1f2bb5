"""Shared by the config tests: the shipped configs and generated data in
the on-disk layout each of them reads."""
import glob
import os.path as osp

from mmseg_sctnet.datasets import synthetic

from .models import ROOT

# the official leaves (a *-trainval.py leaf trains one of them on train +
# val, tests/test_cityscapes_server.py)
OFFICIAL = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs/sctnet/*/*.py'))
    if not p.endswith('-trainval.py'))
TRAINVAL = sorted(
    glob.glob(osp.join(ROOT, 'configs/sctnet/*/*-trainval.py')))
CUSTOM = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs/custom/*.py'))
    if not p.endswith('custom_dataset.py'))
DEMO = sorted(glob.glob(osp.join(ROOT, 'configs/demo/*.py')))
SIAM = sorted(glob.glob(osp.join(ROOT, 'configs/siam/*.py')))
SHIPPED = OFFICIAL + CUSTOM + SIAM + DEMO

# dataset class -> generator of its real on-disk layout
_MAKERS = {
    'CityscapesDataset': synthetic.make_cityscapes,
    'ADE20KDataset': synthetic.make_ade20k,
    'COCOStuffDataset': synthetic.make_coco_stuff10k,
    'BaseSegDataset': synthetic.make_custom,
}


def config_id(path):
    return osp.relpath(path, osp.join(ROOT, 'configs'))


def dataset_type(cfg):
    return cfg.train_dataloader.dataset.type


def make_data(cfg, root, size, n_train=1, n_val=1):
    """Write ``n_train``/``n_val`` generated images of ``size`` (h, w) in
    the layout of ``cfg``'s dataset under ``root``; returns ``root``."""
    return _MAKERS[dataset_type(cfg)](
        str(root), n_train=n_train, n_val=n_val, size=size)


def point_to(cfg, root):
    """Read every split of ``cfg`` from ``root``, in the main process."""
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg.get(name)
        if dl:
            dl.dataset.data_root = str(root)
            dl.num_workers = 0
            dl.persistent_workers = False
    return cfg
