"""tools/publish_model.py under bad input (docs/reliability.md)."""
import os
import os.path as osp

import bad_files as bf
import pytest
import torch

TOOL = 'tools/publish_model.py'

SEGMENTOR = {
    'backbone.conv1.0.weight': torch.ones(4, 3, 3, 3),
    'decode_head.conv_seg.weight': torch.ones(3, 4, 1, 1),
    'auxiliary_head.0.conv_seg.weight': torch.ones(3, 4, 1, 1),
    'auxiliary_head.1.convstage3.weight': torch.ones(5, 4, 1, 1),
    'auxiliary_head.1.teacher_backbone.layers.0.0.projection.weight':
    torch.ones(8, 3, 7, 7),
}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('publish')
    p = {}
    p['segmentor'] = bf.save(
        d / 'iter_8.pth',
        SEGMENTOR,
        meta=dict(iter=8, CLASSES=('a', 'b', 'c')),
        optimizer=dict(state={}, param_groups=[]))
    p['empty'] = bf.empty(d / 'empty.pth')
    p['text'] = bf.text(d / 'notes.txt')
    p['html'] = bf.html(d / 'download.pth')
    p['truncated'] = bf.truncated(d / 'truncated.pth')
    p['list'] = bf.pickled_list(d / 'list.pth')
    p['malicious'] = bf.malicious(d / 'malicious.pth')
    torch.save({'teacher_backbone.w': torch.ones(2),
                'teacher_head.conv_seg.weight': torch.ones(3, 2, 1, 1)},
               str(d / 'teacher.pth'))
    p['teacher'] = str(d / 'teacher.pth')
    p['deploy'] = bf.save(
        d / 'deploy.pth', SEGMENTOR, meta=dict(sctnet_deploy=dict()))
    p['backbone'] = bf.save(d / 'backbone.pth',
                            {'conv1.weight': torch.ones(2)})
    return p


INPUTS = [
    ('empty', 'empty (0 bytes)'),
    ('text', 'not a PyTorch checkpoint'),
    ('html', 'HTML'),
    ('truncated', 'cut short'),
    ('list', 'holds a list'),
    ('malicious', 'Refused to load'),
    ('teacher', 'teacher file'),
    ('deploy', 'deploy checkpoint'),
    ('backbone', 'not a segmentor checkpoint'),
]


@pytest.mark.parametrize('kind,says', INPUTS, ids=[k for k, _ in INPUTS])
def test_bad_input_is_refused(fault_fork, files, tmp_path, kind, says):
    fault_fork.run(
        TOOL, [files[kind], tmp_path / 'release.pth'],
        keep=[osp.dirname(files[kind])],
        names=[osp.basename(files[kind]), says],
        rc=1)
    assert os.listdir(tmp_path) == []


def test_missing_input_fresh_interpreter(fault, tmp_path):
    missing = tmp_path / 'iter_160000.pth'
    fault.run(TOOL, [missing, tmp_path / 'rel.pth'], names=[missing], rc=1)


@pytest.mark.parametrize('out,how', [('iter_8.pth', 'same path'),
                                     ('sym.pth', 'symbolic link'),
                                     ('hard.pth', 'hard link')])
def test_release_name_is_the_input(fault_fork, files, tmp_path, out, how):
    src = tmp_path / 'iter_8.pth'
    with open(files['segmentor'], 'rb') as f:
        src.write_bytes(f.read())
    os.symlink(src, tmp_path / 'sym.pth')
    os.link(src, tmp_path / 'hard.pth')
    fault_fork.run(
        TOOL, ['iter_8.pth', out],
        keep=[tmp_path],
        names=[out, how],
        rc=1,
        cwd=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ['hard.pth', 'iter_8.pth',
                                            'sym.pth']


@pytest.mark.parametrize('out', ['{file}/rel.pth', '/proc/rel.pth', '{dir}'])
def test_unwritable_release(fault_fork, files, tmp_path, out):
    blocker = tmp_path / 'a_file'
    blocker.write_bytes(b'x')
    out = out.format(file=blocker, dir=tmp_path)
    fault_fork.run(
        TOOL, [files['segmentor'], out],
        keep=[tmp_path, files['segmentor']],
        names=[out],
        rc=1)


def _publish(fault_fork, src, out, **kw):
    res = fault_fork.call(TOOL, [src, out], **kw)
    return res


def test_existing_release_with_other_content_is_kept(fault_fork, files,
                                                     tmp_path):
    res = _publish(fault_fork, files['segmentor'], tmp_path / 'rel.pth')
    assert res.returncode == 0, res.output
    (name, ) = os.listdir(tmp_path)
    with open(tmp_path / name, 'ab') as f:
        f.write(b'tampered')
    fault_fork.run(
        TOOL, [files['segmentor'], tmp_path / 'rel.pth'],
        keep=[tmp_path, files['segmentor']],
        names=[name, 'refusing to overwrite'],
        rc=1)


def test_killed_while_writing_leaves_nothing_and_reruns(
        fault_fork, files, tmp_path):
    """kill -9 between writing the temporary file and linking the release:
    no release file (partial or not); the re-run writes the same bytes as
    an uninterrupted run and removes the leftover."""
    ref = tmp_path / 'ref'
    assert _publish(fault_fork, files['segmentor'],
                    ref / 'rel.pth').returncode == 0
    (name, ) = os.listdir(ref)
    run = tmp_path / 'run'
    run.mkdir()
    killer = bf.kill_when(run, name)
    res = _publish(fault_fork, files['segmentor'], run / 'rel.pth',
                   env=dict(SCTNET_TEST_SLOW_SAVE=f'{name}:60'))
    killer.join()
    assert res.returncode == -9 and killer.killed, res.output
    assert not (run / name).exists()
    res = _publish(fault_fork, files['segmentor'], run / 'rel.pth')
    assert res.returncode == 0, res.output
    assert os.listdir(run) == [name]
    assert (run / name).read_bytes() == (ref / name).read_bytes()
