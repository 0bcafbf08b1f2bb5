"""Distributed runs without CUDA, and a clean end of any distributed run.

NCCL and SyncBN need GPUs and DDP must not get ``device_ids`` for a CPU
module; MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` for every
launcher. On a machine without CUDA a ``--launcher`` run of
``tools/train.py``/``tools/test.py`` therefore uses the gloo backend, BN and
a DDP wrapper without device ids, with the process group started here
(MMEngine skips its own when one exists). Nothing changes when CUDA is
available or the run is not distributed (MMEngine reverts SyncBN to BN by
itself then).
"""
import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

from ..io.config import replace_sync_norm
from ..io.errors import UserError

__all__ = [
    'cuda_available', 'adapt_to_cpu_distributed', 'init_cpu_distributed',
    'finish_distributed'
]

def cuda_available() -> bool:
    return torch.cuda.is_available()


def _is_ddp(wrapper_type) -> bool:
    """Whether a ``model_wrapper_cfg`` type is a DistributedDataParallel."""
    cls = wrapper_type if isinstance(wrapper_type, type) else \
        MODEL_WRAPPERS.get(wrapper_type)
    return cls is None or issubclass(cls, DistributedDataParallel)


def adapt_to_cpu_distributed(cfg, launcher: str) -> None:
    """Make a distributed run work without CUDA (``cfg`` in place)."""
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
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    if not _is_ddp(wrapper['type']):
        return  # e.g. the ONNX test wrapper: no DDP arguments
    wrapper['device_ids'] = None
    # BN keeps per-process running statistics; broadcasting rank 0's keeps
    # every rank (and validation) consistent with the saved checkpoint
    wrapper.setdefault('broadcast_buffers', True)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def init_cpu_distributed(cfg, launcher: str) -> None:
    """Start the gloo process group on a machine without CUDA.

    ``pytorch`` (torchrun) provides the rendezvous variables; for ``slurm``
    they are derived from srun's variables as MMEngine does.
    """
    if launcher == 'none' or cuda_available():
        return
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
        raise UserError(f'--launcher {launcher} without CUDA is not '
                        'supported; use tools/dist_train.sh (torchrun).')
    backend = cfg.env_cfg.dist_cfg.get('backend', 'gloo')
    dist.init_process_group(backend=backend)


def finish_distributed() -> None:
    """Wait for every rank, then shut the process group down.

    Exiting with a live gloo group can abort a rank at interpreter teardown
    ("terminate called without an active exception", SIGABRT) after
    training finished; torchrun then reports the whole run as failed.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
