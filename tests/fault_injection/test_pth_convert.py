"""tools/pth_convert.py under bad input (docs/reliability.md, "Bad input").

Every row: exit status 1, one ``error:`` line naming the file and what it
is, no traceback, every file the user had byte-identical.
"""
import os
import os.path as osp
from collections import OrderedDict

import bad_files as bf
import pytest
import torch

TOOL = 'tools/pth_convert.py'


def _segformer_state():
    """A tiny MMSegmentation SegFormer (MiT + SegformerHead) state dict
    with an auxiliary-head tensor, as tools/train.py would save it."""
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    bb = MODELS.build(
        dict(
            type='MixVisionTransformer',
            embed_dims=8,
            num_layers=[1, 1, 1, 1],
            num_heads=[1, 1, 1, 1]))
    head = MODELS.build(
        dict(
            type='SegformerHead',
            in_channels=[8, 8, 8, 8],
            in_index=[0, 1, 2, 3],
            channels=8,
            num_classes=3))
    state = OrderedDict(('backbone.' + k, v)
                        for k, v in bb.state_dict().items())
    state.update(('decode_head.' + k, v)
                 for k, v in head.state_dict().items())
    state['auxiliary_head.conv_seg.weight'] = torch.zeros(3, 8, 1, 1)
    return state


STUDENT = {
    'backbone.conv1.0.weight': torch.zeros(4, 3, 3, 3),
    'backbone.layer3_2.0.conv.weight': torch.zeros(4, 4, 1, 1),
    'backbone.convdown4.0.weight': torch.zeros(4, 4, 1, 1),
    'decode_head.conv_seg.weight': torch.zeros(3, 4, 1, 1),
}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """name -> path of every input kind in the table (written once)."""
    d = tmp_path_factory.mktemp('pth_convert')
    seg = _segformer_state()
    teacher = OrderedDict(
        ('teacher_backbone.' + k[9:] if k.startswith('backbone.') else
         'teacher_head.' + k[12:], v) for k, v in seg.items()
        if k.startswith(('backbone.', 'decode_head.')))
    full = dict(STUDENT)
    full.update(('auxiliary_head.1.' + k, v) for k, v in teacher.items())
    p = {}
    p['segformer'] = bf.save(d / 'segformer.pth', seg, meta=dict(iter=4))
    p['empty'] = bf.empty(d / 'empty.pth')
    p['text'] = bf.text(d / 'config.py')
    p['html'] = bf.html(d / 'download.pth')
    p['truncated'] = bf.truncated(d / 'truncated.pth', dict(state_dict=seg))
    p['list'] = bf.pickled_list(d / 'list.pth')
    p['malicious'] = bf.malicious(d / 'malicious.pth')
    p['no_tensors'] = bf.save(d / 'no_tensors.pth', {}, meta=dict(iter=1))
    p['student'] = bf.save(d / 'sctnet_student.pth', STUDENT)
    p['full_siam'] = bf.save(d / 'sctnet_siam.pth', full)
    torch.save(teacher, str(d / 'teacher.pth'))
    p['teacher'] = str(d / 'teacher.pth')
    torch.save({k[9:]: v
                for k, v in seg.items() if k.startswith('backbone.')},
               str(d / 'mit_b0_imagenet.pth'))
    p['imagenet_mit'] = str(d / 'mit_b0_imagenet.pth')
    p['resnet_seg'] = bf.save(
        d / 'pspnet.pth', {
            'backbone.stem.0.weight': torch.zeros(2, 3, 3, 3),
            'decode_head.conv_seg.weight': torch.zeros(3, 2, 1, 1)
        })
    mit_uper = {k: v for k, v in seg.items() if k.startswith('backbone.')}
    mit_uper['decode_head.bottleneck.conv.weight'] = torch.zeros(2, 2, 1, 1)
    mit_uper['decode_head.conv_seg.weight'] = torch.zeros(3, 2, 1, 1)
    p['mit_upernet'] = bf.save(d / 'mit_upernet.pth', mit_uper)
    p['classifier'] = bf.save(
        d / 'mit_cls.pth', {
            'backbone.layers.0.0.projection.weight': torch.zeros(8, 3, 7, 7),
            'head.fc.weight': torch.zeros(10, 8)
        })
    p['deploy'] = bf.save(
        d / 'sctnet_deploy.pth',
        STUDENT,
        meta=dict(sctnet_deploy=dict(fold_prenorm=True)))
    os.makedirs(d / 'a_folder.pth')
    p['folder'] = str(d / 'a_folder.pth')
    return p


# (input kind, what the one error line must say besides the file name)
INPUTS = [
    ('empty', 'empty (0 bytes)'),
    ('text', 'not a PyTorch checkpoint'),
    ('html', 'HTML'),
    ('truncated', 'cut short'),
    ('list', 'holds a list'),
    ('malicious', 'Refused to load'),
    ('no_tensors', 'no tensors'),
    ('student', 'SCTNet student checkpoint'),
    ('full_siam', 'teacher_checkpoint='),
    ('teacher', 'already a teacher file'),
    ('imagenet_mit', 'ImageNet-pretrained MiT'),
    ('resnet_seg', 'not a SegFormer'),
    ('mit_upernet', 'not a SegformerHead'),
    ('classifier', 'no decode_head'),
    ('deploy', 'deploy checkpoint'),
    ('folder', 'is a folder'),
]


@pytest.mark.parametrize('kind,says', INPUTS, ids=[k for k, _ in INPUTS])
def test_bad_input_is_refused(fault_fork, files, tmp_path, kind, says):
    out = tmp_path / 'teacher.pth'
    res = fault_fork.run(
        TOOL, [files[kind], out, '--force'],
        keep=[osp.dirname(files[kind])],
        names=[osp.basename(files[kind]), says],
        rc=1)
    assert not out.exists(), res.output


def test_missing_input_fresh_interpreter(fault, tmp_path):
    """The one case per tool run by a fresh ``python tools/...``."""
    missing = tmp_path / 'iter_160000.pth'
    fault.run(TOOL, [missing, tmp_path / 'out.pth'], names=[missing], rc=1)


def _links(tmp_path, files):
    """An input and three names for it: the path, a symlink, a hard link,
    plus a path through a symlinked folder."""
    src = tmp_path / 'iter_4.pth'
    with open(files['segformer'], 'rb') as f:
        src.write_bytes(f.read())
    os.symlink(src, tmp_path / 'sym.pth')
    os.link(src, tmp_path / 'hard.pth')
    os.symlink(tmp_path, tmp_path / 'dirlink')
    return src


@pytest.mark.parametrize(
    'out,how', [('iter_4.pth', 'same path'), ('./iter_4.pth', 'same path'),
                ('sym.pth', 'symbolic link'), ('hard.pth', 'hard link'),
                ('dirlink/iter_4.pth', 'symbolic link')])
@pytest.mark.parametrize('force', [False, True])
def test_output_is_the_input(fault_fork, files, tmp_path, out, how, force):
    _links(tmp_path, files)
    fault_fork.run(
        TOOL, ['iter_4.pth', out] + ['--force'] * force,
        keep=[tmp_path],
        names=[out, how, 'never writes over its input'],
        rc=1,
        cwd=tmp_path)


def test_existing_output_kept_without_force(fault_fork, files, tmp_path):
    out = tmp_path / 'teacher.pth'
    out.write_bytes(b'an earlier teacher')
    fault_fork.run(
        TOOL, [files['segformer'], out],
        keep=[tmp_path, files['segformer']],
        names=[out, '--force'],
        rc=1)


@pytest.mark.parametrize('out', ['{file}/teacher.pth', '/proc/teacher.pth',
                                 '{dir}'])
def test_unwritable_output(fault_fork, files, tmp_path, out):
    blocker = tmp_path / 'a_file'
    blocker.write_bytes(b'x')
    out = out.format(file=blocker, dir=tmp_path)
    fault_fork.run(
        TOOL, [files['segformer'], out, '--force'],
        keep=[tmp_path, files['segformer']],
        names=[out],
        rc=1)


def test_killed_while_writing_leaves_old_output_and_reruns(
        fault_fork, files, tmp_path):
    """kill -9 in the middle of writing OUT (--force over an earlier
    teacher): the earlier file stays intact, no partial file; the re-run
    writes the new teacher and removes the killed run's temporary file."""
    out = tmp_path / 'teacher.pth'
    out.write_bytes(b'an earlier teacher')
    killer = bf.kill_when(tmp_path, 'teacher.pth')
    res = fault_fork.call(
        TOOL, [files['segformer'], out, '--force'],
        env=dict(SCTNET_TEST_SLOW_SAVE='teacher.pth:60'))
    killer.join()
    assert res.returncode == -9 and killer.killed, res.output
    assert out.read_bytes() == b'an earlier teacher'
    res = fault_fork.call(TOOL, [files['segformer'], out, '--force'])
    assert res.returncode == 0, res.output
    assert os.listdir(tmp_path) == ['teacher.pth']
    teacher = torch.load(str(out), weights_only=True)
    assert 'teacher_head.fusion_conv.conv.weight' in teacher
    assert not any(k.startswith('auxiliary_head') for k in teacher)
