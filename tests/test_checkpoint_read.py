"""One checkpoint reader, distinct errors: a missing file, a truncated
download, a file that is not a PyTorch checkpoint and a checkpoint of
another model each get their own error type and a message that names the
file, says what is wrong and what to do (issues 12 and 14)."""
import hashlib
import io
import pickle
import zipfile

import pytest
import torch

from mmseg_sctnet.io.errors import (CheckpointFileError,
                                    CheckpointIncompleteError,
                                    CheckpointMismatchError,
                                    CheckpointNotFoundError,
                                    NotACheckpointError,
                                    UserError)
from mmseg_sctnet.io.checkpoint import read_checkpoint, safe_torch_load


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpts')
    state = {'w': torch.arange(4000.).reshape(40, 100)}
    torch.save({'state_dict': state}, str(d / 'good.pth'))
    data = (d / 'good.pth').read_bytes()
    torch.save(
        state, str(d / 'legacy.pth'), _use_new_zipfile_serialization=False)
    legacy = (d / 'legacy.pth').read_bytes()
    out = dict(
        zip_cut=data[:len(data) // 2],  # an interrupted download
        zip_head=data[:10],
        legacy_cut=legacy[:len(legacy) // 2],
        empty=b'',
        html=b'<!DOCTYPE html>\n<html><head><title>404 Not Found</title>',
        lfs=b'version https://git-lfs.github.com/spec/v1\noid sha256:ab\n',
        text=b'model weights will be uploaded soon\n',
        png=b'\x89PNG\r\n\x1a\n' + bytes(64),
        onnx=b'\x08\x07\x12\x07pytorch\x1a\x052.1.0' + bytes(32),
        pickle=pickle.dumps({'w': [1, 2]}, protocol=4),
    )
    with zipfile.ZipFile(str(d / 'other.zip'), 'w') as z:
        z.writestr('weights/readme.txt', 'x')
    paths = {'other_zip': str(d / 'other.zip')}
    for name, blob in out.items():
        (d / f'{name}.pth').write_bytes(blob)
        paths[name] = str(d / f'{name}.pth')
    paths['good'] = str(d / 'good.pth')
    paths['folder'] = str(d)
    return paths


@pytest.mark.parametrize('name', ['zip_cut', 'zip_head', 'legacy_cut'])
def test_truncated_file_is_incomplete_with_size_and_sha256(files, name):
    path = files[name]
    with pytest.raises(CheckpointIncompleteError) as e:
        safe_torch_load(path)
    msg = str(e.value)
    data = open(path, 'rb').read()
    assert path in msg and f'{len(data)} bytes' in msg
    assert hashlib.sha256(data).hexdigest() in msg
    assert 'incomplete' in msg and 'again' in msg  # the fix
    assert isinstance(e.value, RuntimeError) and '\n' not in msg


@pytest.mark.parametrize('name, looks_like', [
    ('empty', 'empty (0 bytes)'),
    ('html', 'HTML'),
    ('lfs', 'Git LFS pointer'),
    ('text', "text file (it starts with 'model weights will"),
    ('png', 'PNG image'),
    ('onnx', 'ONNX model'),
    ('pickle', 'Python pickle that is not a PyTorch checkpoint'),
    ('other_zip', 'zip archive (1 entry: weights/readme.txt)'),
    ('folder', 'is a folder'),
])
def test_non_checkpoint_says_what_it_looks_like(files, name, looks_like):
    path = files[name]
    with pytest.raises(NotACheckpointError) as e:
        safe_torch_load(path)
    msg = str(e.value)
    assert path in msg and looks_like in msg, msg
    assert isinstance(e.value, ValueError) and '\n' not in msg


def test_error_types_are_distinct_user_errors(files, tmp_path):
    kinds = {
        CheckpointNotFoundError: str(tmp_path / 'missing.pth'),
        CheckpointIncompleteError: files['zip_cut'],
        NotACheckpointError: files['html'],
    }
    for cls, path in kinds.items():
        with pytest.raises(CheckpointFileError) as e:
            read_checkpoint(path, 'Teacher checkpoint', 'FIX-HERE')
        assert type(e.value) is cls and isinstance(e.value, UserError)
    with pytest.raises(CheckpointNotFoundError, match='FIX-HERE'):
        read_checkpoint(str(tmp_path / 'missing.pth'), fix='FIX-HERE')
    # the same diagnosis for bytes read from a stream (object storage)
    with pytest.raises(CheckpointIncompleteError):
        safe_torch_load(io.BytesIO(open(files['zip_cut'], 'rb').read()))
    assert read_checkpoint(files['good'])['state_dict']['w'].shape == (40, 100)
    torch.save([1, 2], str(tmp_path / 'list.pth'))
    with pytest.raises(NotACheckpointError, match='holds a list'):
        read_checkpoint(str(tmp_path / 'list.pth'))


def test_truncated_file_through_mmengine_loading_paths(files):
    """MMEngine's load_checkpoint (load_from, init_model) reads through the
    same reader, so a truncated file gets the same message there."""
    from mmengine.runner import load_checkpoint
    with pytest.raises(CheckpointIncompleteError, match='incomplete'):
        load_checkpoint(torch.nn.Linear(100, 40), files['zip_cut'])


def test_checkpoint_of_another_model_explained(tmp_path):
    """load_checked_state_dict: counts, examples, what the file holds and
    the fix; strict=False loads what fits and says what did not."""
    from mmseg_sctnet.io.state_dict import load_checked_state_dict
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    state = {
        '0.weight': torch.zeros(8, 4),
        '0.bias': torch.zeros(8),
        '1.weight': torch.zeros(3, 8),  # another number of classes
        'head.fc.weight': torch.zeros(5, 5),
    }
    with pytest.raises(CheckpointMismatchError) as e:
        load_checked_state_dict(
            net, state, headline='x.pth does not fit Net', fix='Use y.')
    msg = str(e.value)
    assert msg.startswith('x.pth does not fit Net: ')
    assert 'missing tensors: 1 of 4' in msg and "'1.bias'" in msg
    assert '1 tensors differ in shape' in msg
    assert '1.weight: file (3, 8) vs model (2, 8)' in msg
    assert "have no place in the model (e.g. ['head.fc.weight'])" in msg
    assert 'The file holds 4 tensors: 0.* (2)' in msg and 'Use y.' in msg
    report = load_checked_state_dict(
        net, state, headline='x.pth', strict=False, allow_unexpected=True)
    assert report['loaded'] == 2 and report['missing'] == ['1.bias']
    assert torch.equal(net[0].weight, torch.zeros(8, 4))
    with pytest.raises(CheckpointMismatchError, match='no tensor of the'):
        load_checked_state_dict(
            net, {'other': torch.zeros(1)}, headline='z.pth', strict=False)


def test_a_bug_while_reading_a_sound_file_is_not_blamed_on_the_file(
        files, monkeypatch):
    """E.g. torch 2.4's add_safe_globals without (object, name) pairs
    raised AttributeError on every load: that must surface as itself, not
    as 'damaged file, download it again'."""

    def broken_load(*args, **kwargs):
        raise AttributeError("'tuple' object has no attribute '__module__'")

    monkeypatch.setattr(torch, 'load', broken_load)
    with pytest.raises(AttributeError, match='tuple'):
        safe_torch_load(files['good'])
