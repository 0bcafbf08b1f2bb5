"""Safe checkpoint loading on every path, the allow-list against real
checkpoints, and the SHA-256 of what is loaded.

A crafted checkpoint whose unpickling would create a marker file is given
to every loader of the project; each refuses it with a message that says
why and what to do, and the marker never appears. Real MMEngine
checkpoints (optimizer, message hub, schedulers) and official mmcv-0.x
layout checkpoints load and resume.
"""
import builtins
import hashlib
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from helpers.models import CITY_CONFIG
from helpers.tools import load_tool
from helpers.reliability import toy_runner

from mmseg_sctnet.io.errors import UnsafeCheckpointError
from mmseg_sctnet.io.checkpoint import safe_torch_load


class _Payload:
    """Unpickling this runs ``exec`` and creates ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (exec, (f'open({self.path!r}, "w").write("pwned")', ))


class _GetattrPayload:
    """Reaches ``os.system`` through ``getattr`` (the HistoryBuffer
    pattern)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, 'register_statistics'))


@pytest.fixture
def evil(tmp_path):
    """(checkpoint path, marker path): a real-looking checkpoint with the
    payload in ``meta`` next to genuine weights."""
    marker = tmp_path / 'pwned'
    ckpt = tmp_path / 'evil.pth'
    state = torch.nn.Conv2d(1, 1, 1).state_dict()
    torch.save(
        dict(state_dict=state, meta=dict(payload=_Payload(str(marker)))),
        str(ckpt))
    yield str(ckpt), marker
    assert not marker.exists(), 'the payload ran'


def _refused(excinfo, path=None):
    msg = str(excinfo.value)
    assert 'Refused to load checkpoint' in msg
    assert 'nothing in it was executed' in msg
    assert 'references builtins.exec' in msg  # names the refused object
    assert 'What to do' in msg
    if path:
        assert path in msg


def test_safe_torch_load_refuses_and_names_the_object(evil):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as e:
        safe_torch_load(path)
    _refused(e, path)


def test_no_environment_switch_turns_protection_off(evil, monkeypatch):
    path, _ = evil
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(path)
    from mmengine.runner import load_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(torch.nn.Conv2d(1, 1, 1), path)


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    marker = tmp_path / 'pwned'
    ckpt = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrPayload(str(marker))}, str(ckpt))
    with pytest.raises(UnsafeCheckpointError, match='register_statistics'):
        safe_torch_load(str(ckpt))
    # the real getattr is never registered under builtins.getattr
    safe = torch.serialization.get_safe_globals()
    for entry in safe:
        obj = entry[0] if isinstance(entry, tuple) else entry
        assert obj is not builtins.getattr
        assert obj is not builtins.exec and obj is not builtins.eval
    from mmseg_sctnet.io.checkpoint import SAFE_GLOBAL_NAMES
    assert 'builtins.getattr' in SAFE_GLOBAL_NAMES  # the restricted one
    assert not any(
        n.startswith(('os.', 'posix.', 'subprocess', 'builtins.e'))
        for n in SAFE_GLOBAL_NAMES)


def test_init_model_and_load_checkpoint_refuse(evil):
    path, _ = evil
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(torch.nn.Conv2d(1, 1, 1), path)
    _refused(e)
    with pytest.raises(UnsafeCheckpointError):
        init_model(CITY_CONFIG['S'], path, device='cpu')


def test_runner_load_from_and_resume_refuse(evil, tmp_path):
    path, _ = evil
    for resume in (False, True):
        runner = toy_runner(
            tmp_path / f'wd{resume}', load_from=path, resume=resume)
        with pytest.raises(UnsafeCheckpointError):
            runner.train()


def test_http_checkpoints_are_loaded_safely(evil, tmp_path, monkeypatch):
    """load_from='https://...', torchvision://, open-mmlab://, mmcls://:
    MMEngine's loaders would use load_state_dict_from_url / torch.load
    without weights_only."""
    path, _ = evil
    downloads = []

    def fake_download(url, dst, progress=True, **kw):
        downloads.append(url)
        shutil.copy(path, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    from mmengine.runner import CheckpointLoader
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint('https://example.org/x/evil.pth')
    assert downloads == ['https://example.org/x/evil.pth']
    assert osp.isfile(tmp_path / 'hub' / 'checkpoints' / 'evil.pth')
    # the schemes that resolve to a URL (MMEngine's model lists)
    for name in ('torchvision://resnet18', 'modelzoo://resnet18',
                 'open-mmlab://vgg16_caffe', 'openmmlab://vgg16_caffe',
                 'mmcls://vgg11'):
        with pytest.raises(UnsafeCheckpointError):
            CheckpointLoader.load_checkpoint(name)
    assert len(downloads) == 4  # cached after the first download of each
    assert {osp.basename(u) for u in downloads[1:]} == {
        'resnet18-f37072fd.pth', 'vgg16_caffe-292e1171.pth',
        'vgg11_batch256_imagenet_20210208-4271cd6c.pth'
    }


def test_object_storage_checkpoints_are_loaded_safely(evil, monkeypatch):
    """s3:// / petrel:// bytes fetched by the storage backend go through
    the same restricted unpickler (no petrel client needed: the backend's
    ``get`` is stood in for)."""
    path, _ = evil
    from mmseg_sctnet.io import checkpoint_schemes

    class Storage:

        def get(self, uri):
            return open(path if 'evil' in uri else good, 'rb').read()

    good = path + '.good'
    torch.save({'state_dict': {'w': torch.ones(1)}}, good)
    monkeypatch.setattr(checkpoint_schemes, 'get_file_backend',
                        lambda uri, backend_args=None: Storage())
    from mmengine.runner import CheckpointLoader
    with pytest.raises(UnsafeCheckpointError) as e:
        CheckpointLoader.load_checkpoint('s3://bucket/evil.pth')
    assert 's3://bucket/evil.pth' in str(e.value)
    ckpt = CheckpointLoader.load_checkpoint('cluster:s3://bucket/good.pth')
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(1))


def test_teacher_backbone_pth_convert_publish_refuse(evil, tmp_path, capsys):
    path, _ = evil
    from mmseg.registry import MODELS
    from mmseg_sctnet.io.state_dict import load_file_into
    with pytest.raises(UnsafeCheckpointError):
        load_file_into(torch.nn.Conv2d(1, 1, 1), path, what='backbone')
    with pytest.raises(UnsafeCheckpointError):
        MODELS.build(dict(type='SCTNet')).load_pretrained(path)
    head = MODELS.build(
        dict(
            type='VitGuidanceHead',
            base_channels=32,
            teacher_backbone=dict(
                type='MixVisionTransformer',
                embed_dims=32,
                num_layers=[1, 1, 1, 1],
                num_heads=[1, 2, 5, 8]),
            teacher_head=dict(
                type='SegformerHead',
                in_channels=[32, 64, 160, 256],
                in_index=[0, 1, 2, 3],
                channels=32,
                num_classes=4)))
    with pytest.raises(UnsafeCheckpointError):
        head.load_teacher(path)
    out = str(tmp_path / 'teacher.pth')
    with pytest.raises(SystemExit) as e:
        load_tool('pth_convert').main([path, out])
    assert e.value.code == 1
    assert 'Refused to load checkpoint' in capsys.readouterr().err
    assert not osp.exists(out)
    with pytest.raises(SystemExit) as e:
        load_tool('publish_model').main([path, str(tmp_path / 'pub.pth')])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'Refused to load checkpoint' in err and 'Traceback' not in err
    assert not [f for f in os.listdir(tmp_path) if f.startswith('pub')]


def test_mmengine_checkpoint_with_optimizer_message_hub_resumes(tmp_path):
    """A real Runner writes iter_3.pth on its way to 6 (optimizer, message hub with
    HistoryBuffers, LinearLR+PolyLR states, meta, RNG states); it loads with
    weights_only and a second Runner resumes from it."""
    from mmseg_sctnet.engine import ExactResumeHook
    first = toy_runner(
        tmp_path / 'a',
        max_iters=6,
        interval=3,
        custom_hooks=[ExactResumeHook()])
    first.train()
    ckpt_path = str(tmp_path / 'a' / 'iter_3.pth')
    ckpt = safe_torch_load(ckpt_path)
    assert {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers',
        'rng_state'
    } <= set(ckpt)
    from mmengine.logging import HistoryBuffer
    loss_buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss_buf, HistoryBuffer) and len(loss_buf.data[0]) == 3
    assert ckpt['rng_state']['world_size'] == 1
    assert isinstance(ckpt['rng_state']['ranks'][0]['numpy'][1], np.ndarray)
    steps = {float(s['step']) for s in ckpt['optimizer']['state'].values()}
    assert steps == {3.0}

    second = toy_runner(
        tmp_path / 'b',
        max_iters=6,
        interval=3,
        custom_hooks=[ExactResumeHook()],
        load_from=ckpt_path,
        resume=True)
    second.train()
    assert second.iter == 6
    hub = second.message_hub
    assert len(hub.get_scalar('train/loss').data[0]) == 6  # 3 restored + 3
    state = second.optim_wrapper.optimizer.state_dict()['state']
    assert {float(s['step']) for s in state.values()} == {6.0}
    for a, b in zip(first.param_schedulers, second.param_schedulers):
        assert a.state_dict() == b.state_dict()
    # resumed == uninterrupted (the first runner went on to iteration 6)
    for k, v in first.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[k], v)


def test_official_layout_checkpoint_loads_through_init_model(
        official_ckpt_s, monkeypatch):
    """mmcv-0.x layout (numpy meta, teacher under auxiliary_head.1.teacher_*,
    optimizer) loads with weights_only through mmseg's init_model, and the
    SHA-256 of the file is logged."""
    path, state = official_ckpt_s
    from mmseg_sctnet.io import checkpoint
    logged = []
    orig = checkpoint.print_log
    monkeypatch.setattr(
        checkpoint, 'print_log', lambda msg, *a, **k:
        (logged.append(str(msg)), orig(msg, *a, **k)))
    from mmseg.apis import init_model
    model = init_model(CITY_CONFIG['S'], path, device='cpu')
    sha = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    assert any(sha in m and path in m for m in logged), logged
    for k in ('backbone.conv1.0.weight', 'decode_head.conv_seg.weight'):
        torch.testing.assert_close(model.state_dict()[k], state[k])
    assert model.dataset_meta['classes'][0] == 'road'


def test_checksum_cache_and_name_mismatch_warning(tmp_path, monkeypatch):
    from mmseg_sctnet.io import checksum
    p = tmp_path / 'model-00000000.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, str(p))
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(checksum.hashlib, 'sha256', lambda *a:
                        (calls.append(1), real(*a))[1])
    assert checksum.file_sha256(str(p)) == digest
    assert checksum.file_sha256(str(p)) == digest
    assert len(calls) == 1  # cached by path, size, mtime
    assert checksum.name_hash_mismatch(str(p), digest) is not None or \
        digest.startswith('00000000')
    good = tmp_path / f'model-{digest[:8]}.pth'
    shutil.copy(p, good)
    assert checksum.name_hash_mismatch(str(good), digest) is None
    assert 'modified' in checksum.name_hash_mismatch(str(p), 'f' * 64)


# ---------------------------------------------------------- publishing
def test_publish_model_strips_training_state_and_names_by_sha(
        official_ckpt_s, tmp_path, capsys):
    path, state = official_ckpt_s
    tool = load_tool('publish_model')
    out = str(tmp_path / 'rel' / 'sctnet_s_city.pth')
    assert tool.main([path, out]) == 0
    files = os.listdir(tmp_path / 'rel')
    assert len(files) == 1 and files[0].startswith('sctnet_s_city-')
    final = str(tmp_path / 'rel' / files[0])
    sha = hashlib.sha256(open(final, 'rb').read()).hexdigest()
    assert files[0] == f'sctnet_s_city-{sha[:8]}.pth'
    printed = capsys.readouterr().out
    assert f'sha256   {sha}' in printed and 'teacher (' in printed
    pub = safe_torch_load(final)
    assert set(pub) == {'meta', 'state_dict'}  # no optimizer / hub / ...
    keys = set(pub['state_dict'])
    assert not any('teacher_' in k for k in keys)
    expected = {k for k in state if 'teacher_' not in k}
    assert keys == expected  # student + aux head + SIAM projections
    assert any(k.startswith('auxiliary_head.1.convstage3') for k in keys)
    assert 'hook_msgs' not in pub['meta']
    assert pub['meta']['CLASSES'][0] == 'road'
    assert pub['meta']['published']['dropped']['teacher'] > 0
    mtime = os.path.getmtime(final)
    # publishing again never overwrites; the same content is reported
    assert tool.main([path, out]) == 0
    assert 'already exists with the same content' in capsys.readouterr().out
    assert os.path.getmtime(final) == mtime
    # a different file under that name is refused
    with open(final, 'ab') as f:
        f.write(b'tampered')
    with pytest.raises(SystemExit):
        tool.main([path, out])
    assert 'refusing to overwrite' in capsys.readouterr().err
    # loading the tampered file warns that its name's hash does not match
    from mmseg_sctnet.io.checksum import name_hash_mismatch
    assert 'not the published one' in name_hash_mismatch(
        final,
        hashlib.sha256(open(final, 'rb').read()).hexdigest())
    # student only: what is deployed
    assert tool.main([path,
                      str(tmp_path / 'student.pth'), '--student-only']) == 0
    (student, ) = [f for f in os.listdir(tmp_path) if f.startswith('student-')]
    keys = set(safe_torch_load(str(tmp_path / student))['state_dict'])
    assert keys == {
        k
        for k in state if k.startswith(('backbone.', 'decode_head.'))
    }


def test_published_model_deploys_through_init_model(official_ckpt_s, tmp_path):
    path, state = official_ckpt_s
    load_tool('publish_model').main([path, str(tmp_path / 'm.pth')])
    (pub, ) = os.listdir(tmp_path)
    from mmseg.apis import inference_model, init_model
    model = init_model(CITY_CONFIG['S'], str(tmp_path / pub), device='cpu')
    torch.testing.assert_close(
        model.state_dict()['decode_head.conv_seg.weight'],
        state['decode_head.conv_seg.weight'])
    result = inference_model(model, np.zeros((64, 128, 3), np.uint8))
    assert result.pred_sem_seg.data.shape[-2:] == (64, 128)
