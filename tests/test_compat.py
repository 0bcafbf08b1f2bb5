"""The compat layer: mmcv.ops fallback and safe checkpoint loading."""
import os
import pickle

import pytest
import torch


def test_mmcv_ops_fallback_gives_pure_torch_point_sample():
    import mmcv.ops
    from mmseg_sctnet.compat import has_compiled_ops
    if has_compiled_ops():
        pytest.skip('full mmcv installed: no fallback')
    assert getattr(mmcv.ops, 'IS_SCTNET_FALLBACK', False)
    feat = torch.arange(16.).reshape(1, 1, 4, 4)
    pts = torch.tensor([[[0.125, 0.125], [0.875, 0.875]]])  # pixel centres
    out = mmcv.ops.point_sample(feat, pts, align_corners=False)
    assert torch.allclose(out, torch.tensor([[[0., 15.]]]))


def test_missing_compiled_op_raises_clear_error():
    import mmcv.ops
    from mmseg_sctnet.compat import MissingCompiledOpError, has_compiled_ops
    if has_compiled_ops():
        pytest.skip('full mmcv installed')
    from mmcv.ops import DeformConv2d, sigmoid_focal_loss  # import works
    assert not isinstance(torch.nn.Conv2d(1, 1, 1), DeformConv2d)
    with pytest.raises(MissingCompiledOpError, match='sigmoid_focal_loss'):
        sigmoid_focal_loss(torch.zeros(1), torch.zeros(1))
    with pytest.raises(MissingCompiledOpError, match='mmcv-lite'):
        DeformConv2d(3, 3, 3)


def test_every_mmseg_module_registers():
    from mmseg.registry import MODELS
    for name in ('SCTNet', 'SCTHead', 'AU_SCTHead', 'VitGuidanceHead',
                 'EncoderDecoder_Distill', 'AlignmentLoss',
                 'MixVisionTransformer', 'SegformerHead', 'PIDNet'):
        assert MODELS.get(name) is not None, name


class _Payload:
    """Unpickling this object would create a marker file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_checkpoint_with_callable_is_refused_and_never_runs(tmp_path):
    from mmengine.runner import load_checkpoint
    from mmseg_sctnet.io.errors import UnsafeCheckpointError
    marker = tmp_path / 'pwned'
    ckpt = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Payload(str(marker))}, str(ckpt))
    model = torch.nn.Conv2d(1, 1, 1)
    with pytest.raises(
            UnsafeCheckpointError, match='nothing in it was executed'):
        load_checkpoint(model, str(ckpt))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(ckpt))  # torch's own default stays safe as well
    assert not marker.exists()


def test_missing_checkpoint_names_the_path(tmp_path):
    from mmseg_sctnet.io.checkpoint import safe_torch_load
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_torch_load(str(tmp_path / 'nope.pth'))


def test_official_mmcv0_checkpoint_with_numpy_meta_loads(official_ckpt_s):
    from mmseg_sctnet.io.checkpoint import safe_torch_load
    path, _ = official_ckpt_s
    ckpt = safe_torch_load(path)
    assert float(
        ckpt['meta']['hook_msgs']['best_score']) == pytest.approx(76.46)
    assert os.path.getsize(path) > 0


# ------------------------------------------------------------ atomic I/O
def test_atomic_backend_writes_atomically(tmp_path, monkeypatch):
    from mmengine.fileio import get_file_backend
    from mmengine.fileio.backends import LocalBackend
    from mmseg_sctnet.io import atomic as atomic_io
    # MMEngine's own 'local' backend stays what it is
    assert type(get_file_backend(str(tmp_path / 'x.pth'))) is LocalBackend
    backend = get_file_backend(
        str(tmp_path / 'x.pth'), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, atomic_io.AtomicLocalBackend)
    target = tmp_path / 'sub' / 'iter_2.pth'
    backend.put(b'old', str(target))
    assert target.read_bytes() == b'old'
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask

    def crash(src, dst):  # the process dies between write and rename
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_io.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'new-but-interrupted', str(target))
    with pytest.raises(KeyboardInterrupt):
        backend.put_text('interrupted', str(tmp_path / 'sub' / 'pointer'))
    assert target.read_bytes() == b'old'  # never a partial file
    assert os.listdir(target.parent) == ['iter_2.pth']  # temp removed


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys
    from mmseg_sctnet.io.atomic import TMP_SUFFIX, remove_stale_temp_files
    dead = subprocess.run(
        [sys.executable, '-c', 'import os;print(os.getpid())'],
        capture_output=True,
        text=True).stdout.strip()
    stale = tmp_path / f'.iter_4.pth.{dead}.0123456789ab{TMP_SUFFIX}'
    live = tmp_path / f'.iter_6.pth.{os.getpid()}.0123456789ab{TMP_SUFFIX}'
    user = tmp_path / f'.notes.{dead}{TMP_SUFFIX}'  # not our pattern
    for p in (stale, live, user):
        p.write_bytes(b'x')
    assert remove_stale_temp_files(str(tmp_path)) == [str(stale)]
    assert live.exists() and user.exists() and not stale.exists()
