"""Helpers shared by tools/train.py, tools/test.py and tools/demo.py.

* :func:`adapt_to_cpu_distributed`: what a distributed run needs on a
  machine without CUDA (gloo, BN instead of SyncBN, DDP without
  ``device_ids``).
* :func:`make_run_names_unique`: several runners in one process (the demo)
  must not share MMEngine's named visualizer.
* :class:`SideBySideSegVisualizer`: ``input | ground truth | prediction``
  PNGs in the dataset palette, for ``tools/test.py --show-dir``.
"""
import os
import os.path as osp
from typing import List, Optional

import _bootstrap  # noqa: F401

import cv2
import numpy as np

import mmseg_sctnet  # noqa: F401  (registers SCTNet, applies compat)
from mmengine.logging import print_log
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'TorchSyncBN', 'SyncBatchNorm')


def replace_sync_norm(cfg, new: str = 'BN') -> int:
    """Replace every SyncBN-type norm config in ``cfg`` by ``new``.

    Walks dicts and lists in place; returns how many were replaced.
    """
    n = 0
    if isinstance(cfg, dict):
        if cfg.get('type') in SYNC_NORMS:
            cfg['type'] = new
            n += 1
        for v in cfg.values():
            n += replace_sync_norm(v, new)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            n += replace_sync_norm(v, new)
    return n


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def adapt_to_cpu_distributed(cfg, launcher: str) -> None:
    """Make a distributed run work without CUDA (in place).

    NCCL and SyncBN need GPUs and DDP must not get ``device_ids`` for a CPU
    module, so on a machine without CUDA a ``--launcher`` run uses the gloo
    backend, BN and a DDP wrapper without device ids. Nothing changes when
    CUDA is available or the run is not distributed (MMEngine already
    reverts SyncBN to BN then).
    """
    if launcher == 'none' or cuda_available():
        return
    env = cfg.setdefault('env_cfg', {})
    dist_cfg = env.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') not in ('gloo', 'mpi'):
        print_log(
            f'No CUDA: distributed backend {dist_cfg.get("backend", "nccl")!r}'
            " -> 'gloo'.",
            logger='current')
        dist_cfg['backend'] = 'gloo'
    n = replace_sync_norm(cfg.model)
    if n:
        print_log(
            f'No CUDA: {n} SyncBN norm configs replaced by BN (SyncBN '
            'needs GPUs); each process normalises over its own batch.',
            logger='current')
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper = dict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    # BN keeps per-process running statistics; broadcasting rank 0's keeps
    # every rank (and validation) consistent with the saved checkpoint
    wrapper.setdefault('broadcast_buffers', True)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def init_cpu_distributed(cfg, launcher: str) -> None:
    """Start the gloo process group on a machine without CUDA.

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` for every
    launcher, which fails without a GPU; MMEngine skips it when a process
    group exists already. ``pytorch`` (torchrun) provides the rendezvous
    variables; for ``slurm`` they are derived from srun's variables as
    MMEngine does.
    """
    if launcher == 'none' or cuda_available():
        return
    import subprocess

    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1').strip()
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ.setdefault('MASTER_ADDR', addr)
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    elif launcher != 'pytorch':
        raise SystemExit(f'error: --launcher {launcher} without CUDA is not '
                         'supported; use tools/dist_train.sh (torchrun).')
    backend = cfg.env_cfg.dist_cfg.get('backend', 'gloo')
    dist.init_process_group(backend=backend)


def finish_distributed() -> None:
    """Wait for every rank, then shut the process group down.

    Exiting with a live gloo group can abort a rank at interpreter teardown
    ("terminate called without an active exception", SIGABRT) after
    training finished; torchrun then reports the whole run as failed.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


#: the runtime base whose ``custom_hooks`` are the reliability hooks
RUNTIME_BASE = osp.join(_bootstrap.ROOT, 'configs', '_base_',
                        'default_runtime.py')


def ensure_reliability_hooks(cfg) -> List[str]:
    """Add back the reliability hooks a config's ``custom_hooks`` dropped.

    A leaf config that sets ``custom_hooks = [...]`` replaces the base list
    (MMEngine merges dicts, not lists), which would silently switch off the
    dataset check, the non-finite-loss stop and exact resume. They are added
    back, with a log line; ``reliability_hooks = False`` in the config keeps
    the list as written (``dataset_check = dict(enable=False)`` switches off
    only the data check). Returns the names added.
    """
    if not cfg.get('reliability_hooks', True):
        return []
    hooks = list(cfg.get('custom_hooks', None) or [])
    present = {
        h.get('type') if isinstance(h, dict) else type(h).__name__
        for h in hooks
    }
    from mmengine.config import Config
    base = Config.fromfile(RUNTIME_BASE).custom_hooks
    added = [dict(h) for h in base if h['type'] not in present]
    if added:
        cfg.custom_hooks = hooks + added
        print_log(
            'custom_hooks of this config leave out '
            f'{", ".join(h["type"] for h in added)}; added back (set '
            'reliability_hooks = False in the config to run without them; '
            'docs/reliability.md)', logger='current')
    return [h['type'] for h in added]


def make_run_names_unique(cfg) -> None:
    """Let MMEngine name the visualizer after the run (in place).

    The configs name their visualizer ``'visualizer'``; MMEngine returns an
    existing instance of that name, so a second runner in the same process
    (the demo trains, then tests) would write its scalars and images into
    the first run's folder. Without a fixed name MMEngine uses the run's
    unique experiment name.
    """
    vis = cfg.get('visualizer')
    if isinstance(vis, dict):
        vis.pop('name', None)


def check_file(what: str, path: Optional[str]) -> None:
    if path is not None and not osp.isfile(path):
        raise SystemExit(f'error: {what} not found: {path} (resolved to '
                         f'{osp.abspath(path)})')


@VISUALIZERS.register_module(force=True)
class SideBySideSegVisualizer(SegLocalVisualizer):
    """Writes ``input | ground truth | prediction`` PNGs.

    Built on :class:`mmseg.visualization.SegLocalVisualizer`: the overlays
    are its ``_draw_sem_seg`` (dataset palette, ``alpha`` blending, ignored
    pixels left uncoloured); a legend strip below names the classes shown.
    Used through MMSegmentation's ``SegVisualizationHook`` (``draw=True``),
    which reads each test image and calls :meth:`add_datasample`.

    Args:
        out_dir (str): folder for the PNGs, one per image, named after the
            image file (``<stem>.png``).
        Other arguments as :class:`SegLocalVisualizer`.
    """

    def __init__(self, out_dir: str, name: str = 'side_by_side', **kwargs):
        super().__init__(name=name, **kwargs)
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.written: List[str] = []

    def _legend(self, labels, width: int) -> np.ndarray:
        classes = self.dataset_meta['classes']
        palette = self.dataset_meta['palette']
        font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
        cells = []
        for lab in labels:
            text = str(classes[lab])
            (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
            cell = np.full((18, tw + 24, 3), 255, np.uint8)
            cell[3:15, 3:15] = palette[lab]
            cv2.putText(cell, text, (19, 13), font, scale, (0, 0, 0), thick,
                        cv2.LINE_AA)
            cells.append(cell)
        rows, row, row_w = [], [], 0
        for cell in cells:
            if row and row_w + cell.shape[1] > width:
                rows.append(row)
                row, row_w = [], 0
            row.append(cell)
            row_w += cell.shape[1]
        if row:
            rows.append(row)
        strips = []
        for r in rows:
            strip = np.concatenate(r, axis=1)[:, :width]
            pad = width - strip.shape[1]
            strips.append(np.pad(strip, ((0, 0), (0, pad), (0, 0)),
                                 constant_values=255))
        if not strips:
            return np.zeros((0, width, 3), np.uint8)
        return np.concatenate(strips, axis=0)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample=None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = False) -> None:
        """Compose and write one PNG. ``image`` is RGB ``[H, W, 3]``."""
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')
        panels = [image]
        shown = set()
        for key, wanted in (('gt_sem_seg', draw_gt), ('pred_sem_seg',
                                                      draw_pred)):
            if not wanted or data_sample is None or key not in data_sample:
                continue
            seg = data_sample.get(key)
            panels.append(
                self._draw_sem_seg(image, seg, classes, palette, False))
            ids = np.unique(seg.cpu().data.numpy())
            shown.update(int(i) for i in ids if i < len(classes))
        sep = np.full((image.shape[0], 4, 3), 255, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [sep, p]
        drawn = np.concatenate(row, axis=1)
        legend = self._legend(sorted(shown), drawn.shape[1])
        drawn = np.concatenate([drawn, legend], axis=0)
        if out_file is None:
            stem = osp.splitext(name.split('_', 1)[-1] if name.startswith(
                ('test_', 'val_')) else name)[0]
            out_file = osp.join(self.out_dir, stem + '.png')
        cv2.imwrite(out_file, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        self.written.append(out_file)
