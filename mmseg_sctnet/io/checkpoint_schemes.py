"""Safe loaders for every checkpoint scheme MMEngine knows.

MMEngine 0.10.7 registers these ``CheckpointLoader`` schemes, and every one
ends in ``torch.load`` with its default (``weights_only=False`` before
torch 2.6) or in ``load_state_dict_from_url``:

=============================== =============================================
scheme                          MMEngine's loader reads through
=============================== =============================================
local path (prefix ``''``)      ``torch.load``
``http://``, ``https://``       ``load_url``
``torchvision://``,             ``load_from_http``
``modelzoo://``
``open-mmlab://``,              ``load_from_http`` or ``torch.load`` of a
``openmmlab://``                file under MMEngine's home
``mmcls://``                    ``load_from_http``
``pavi://``                     ``torch.load`` of a downloaded file
``s3://``, ``petrel://``        ``torch.load`` of the fetched bytes
=============================== =============================================

:func:`register_safe_schemes` registers a loader for each of them through
``CheckpointLoader.register_scheme`` (MMEngine's public extension point)
that resolves the name the same way and reads the file with
:func:`mmseg_sctnet.io.checkpoint.safe_torch_load`. No MMEngine function or module
global is replaced.
"""
import io
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from .checkpoint import safe_torch_load

__all__ = [
    'register_safe_schemes', 'load_from_local_safe', 'load_from_http_safe',
    'load_from_torchvision_safe', 'load_from_openmmlab_safe',
    'load_from_mmcls_safe', 'load_from_pavi_safe', 'load_from_ceph_safe'
]


def _with_meta(ckpt):
    """A bare state dict becomes ``{'state_dict': ..., 'meta': {}}``; a
    missing ``meta`` is added (``mmseg.apis.init_model`` reads it)."""
    if isinstance(ckpt, dict):
        if 'state_dict' not in ckpt and ckpt and all(
                isinstance(v, torch.Tensor) for v in ckpt.values()):
            ckpt = {'state_dict': ckpt}
        if 'state_dict' in ckpt:
            ckpt.setdefault('meta', {})
    return ckpt


def load_from_local_safe(filename, map_location):
    """Loader for local paths: MMEngine's ``load_from_local`` contract,
    always ``weights_only=True`` with the project allow-list. A bare state
    dict (what the official ``pth_convert.py`` or ``torch.save(model
    .state_dict())`` write) and a file without ``meta`` load through
    ``mmseg.apis.init_model``."""
    filename = osp.expanduser(filename)
    return _with_meta(safe_torch_load(filename, map_location=map_location))


def load_from_http_safe(filename,
                        map_location=None,
                        model_dir=None,
                        progress=None):
    """Loader for ``http(s)://`` URLs.

    Downloads into the torch hub cache (``<hub dir>/checkpoints``, where
    ``torch.hub.load_state_dict_from_url`` puts files; local rank 0 first)
    and reads the file with :func:`safe_torch_load`.
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()

    def download():
        if not osp.exists(cached):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(
                filename,
                cached,
                progress=os.isatty(0) if progress is None else progress)

    if rank == 0:
        download()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            download()
    return _with_meta(safe_torch_load(cached, map_location=map_location))


def load_from_torchvision_safe(filename, map_location=None):
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``):
    torchvision's URL of ``NAME``, read by :func:`load_from_http_safe`."""
    name = filename.split('://', 1)[1]
    return load_from_http_safe(
        get_torchvision_models()[name], map_location=map_location)


def _mmengine_home() -> str:
    """MMEngine's cache folder (``$MMENGINE_HOME``, else
    ``$XDG_CACHE_HOME/mmengine``, else ``~/.cache/mmengine``)."""
    home = os.getenv('MMENGINE_HOME') or osp.join(
        os.getenv('XDG_CACHE_HOME', osp.join('~', '.cache')), 'mmengine')
    return osp.expanduser(home)


def load_from_openmmlab_safe(filename, map_location=None):
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: the URL (or file under
    MMEngine's home) MMEngine's model list gives for ``NAME``."""
    prefix, name = filename.split('://', 1)
    deprecated = get_deprecated_model_names()
    if name in deprecated:
        print_log(
            f'{prefix}://{name} is deprecated in favor of '
            f'{prefix}://{deprecated[name]}',
            logger='current',
            level=30)
        name = deprecated[name]
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http_safe(url, map_location=map_location)
    return _with_meta(
        safe_torch_load(
            osp.join(_mmengine_home(), url), map_location=map_location))


def load_from_mmcls_safe(filename, map_location=None):
    """``mmcls://NAME``: MMClassification's URL of ``NAME``; keeps the
    ``backbone.*`` tensors without that prefix, as MMEngine does."""
    ckpt = load_from_http_safe(
        get_mmcls_models()[filename[len('mmcls://'):]],
        map_location=map_location)
    state = ckpt.get('state_dict', ckpt)
    return dict(
        state_dict=OrderedDict((k[len('backbone.'):], v)
                               for k, v in state.items()
                               if k.startswith('backbone.')))


def load_from_pavi_safe(filename, map_location=None):
    """``pavi://PATH``: downloaded from pavi's model cloud into a
    temporary folder, then read safely."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp:
        local = osp.join(tmp, model.name)
        model.download(local)
        return safe_torch_load(
            local, map_location=map_location, log_checksum=False)


def load_from_ceph_safe(filename, map_location=None, backend='petrel'):
    """``s3://`` / ``petrel://`` (optionally ``cluster:s3://``): the bytes
    fetched by MMEngine's file backend, read safely."""
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        buffer.name = filename
        return safe_torch_load(buffer, map_location=map_location)


#: (prefixes, loader), in MMEngine's order
SAFE_SCHEMES = (
    ('', load_from_local_safe),
    (('http://', 'https://'), load_from_http_safe),
    ('pavi://', load_from_pavi_safe),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph_safe),
    (('modelzoo://', 'torchvision://'), load_from_torchvision_safe),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab_safe),
    ('mmcls://', load_from_mmcls_safe),
)


def register_safe_schemes() -> None:
    """Register the safe loaders for every scheme above (idempotent)."""
    for prefixes, loader in SAFE_SCHEMES:
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)
