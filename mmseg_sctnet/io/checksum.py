"""SHA-256 of checkpoint files, logged whenever one is loaded.

A released checkpoint that silently was the wrong model cost users of the
original release months (its issue #42). Every checkpoint this project
loads from a local path has its SHA-256 logged (see
:func:`mmseg_sctnet.compat.safe_torch_load`), and files published by
``tools/publish_model.py`` carry the first 8 hex digits in their name
(``name-<sha8>.pth``): a file whose name says one hash and whose content
has another is reported.

Hashes are cached by (real path, size, mtime, inode), so resuming or
reloading a large file does not hash it again.
"""
import hashlib
import os
import os.path as osp
import re
from typing import Dict, Optional, Tuple

__all__ = ['file_sha256', 'name_hash_mismatch', 'sha256_prefix_in_name']

_CACHE: Dict[Tuple, str] = {}
_NAME_RE = re.compile(r'-([0-9a-f]{8,64})\.(pth|pt|ckpt)$')


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path`` (cached by path/size/mtime)."""
    st = os.stat(path)
    key = (osp.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    digest = h.hexdigest()
    _CACHE[key] = digest
    return digest


def sha256_prefix_in_name(path: str) -> Optional[str]:
    """The ``<hex>`` of a ``name-<hex>.pth`` file name, or None."""
    m = _NAME_RE.search(osp.basename(path))
    return m.group(1) if m else None


def name_hash_mismatch(path: str, digest: str) -> Optional[str]:
    """A warning text when the name's hash prefix disagrees with ``digest``."""
    prefix = sha256_prefix_in_name(path)
    if prefix is None or digest.startswith(prefix):
        return None
    return (f'{path}: the file name carries the SHA-256 prefix {prefix} but '
            f'the content hashes to {digest[:len(prefix)]}... ({digest}). '
            'The file was modified or is not the published one: download it '
            'again or ask its publisher for the right file.')
