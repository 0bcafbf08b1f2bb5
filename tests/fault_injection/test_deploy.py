"""tools/deploy.py under bad input (docs/reliability.md).

File and output problems are refused before the model is built; the
wrong-model rows build SCTNet-S/B once each (about a second).
"""
import os
import os.path as osp

import bad_files as bf
import pytest
import torch
from helpers.models import write_official_checkpoint

TOOL = 'tools/deploy.py'
S = osp.abspath(
    'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')
B = osp.abspath(
    'configs/sctnet/cityscapes/sctnet-b_seg50_8x2_160k_cityscapes.py')
S_ADE = osp.abspath('configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py')
SEGFORMER = osp.abspath('configs/custom/segformer_mit-b0_custom.py')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('deploy')
    p = dict(student=str(d / 'iter_4.pth'))
    write_official_checkpoint(p['student'], 'S', seed=3, with_teacher=False)
    p['empty'] = bf.empty(d / 'empty.pth')
    p['text'] = bf.text(d / 'notes.pth')
    p['truncated'] = bf.truncated(d / 'truncated.pth')
    p['list'] = bf.pickled_list(d / 'list.pth')
    p['malicious'] = bf.malicious(d / 'malicious.pth')
    p['deployed'] = bf.save(
        d / 'deployed.pth', {'backbone.conv1.0.weight': torch.ones(1)},
        meta=dict(sctnet_deploy=dict(fold_prenorm=True)))
    torch.save({'teacher_backbone.w': torch.ones(2),
                'teacher_head.conv_seg.weight': torch.ones(19, 2, 1, 1)},
               str(d / 'teacher.pth'))
    p['teacher'] = str(d / 'teacher.pth')
    return p


# (input kind, config, what the error line says)
INPUTS = [
    ('empty', S, 'empty (0 bytes)'),
    ('text', S, 'not a PyTorch checkpoint'),
    ('truncated', S, 'cut short'),
    ('list', S, 'holds a list'),
    ('malicious', S, 'Refused to load'),
    ('deployed', S, 'already a deploy checkpoint'),
    ('teacher', S, 'missing'),
    ('student', B, 'differ in shape'),  # SCTNet-S weights, SCTNet-B config
    ('student', S_ADE, 'differ in shape'),  # 19 classes into a 150 one
]


@pytest.mark.parametrize(
    'kind,config,says', INPUTS,
    ids=['empty', 'text', 'truncated', 'list', 'malicious', 'deployed',
         'teacher', 'other_model_size', 'other_classes'])
def test_bad_checkpoint_is_refused(fault_fork, files, tmp_path, kind, config,
                                   says):
    out = tmp_path / 'deploy.pth'
    fault_fork.run(
        TOOL, [files[kind], out, '--config', config],
        keep=[osp.dirname(files[kind])],
        names=[osp.basename(files[kind]), says],
        rc=1)
    assert os.listdir(tmp_path) == []


def test_missing_checkpoint_fresh_interpreter(fault, tmp_path):
    missing = tmp_path / 'iter_4.pth'
    fault.run(TOOL, [missing, tmp_path / 'd.pth', '--config', S],
              names=[missing], rc=1)


@pytest.fixture
def user(tmp_path, files):
    src = tmp_path / 'iter_4.pth'
    with open(files['student'], 'rb') as f:
        src.write_bytes(f.read())
    os.symlink(src, tmp_path / 'sym.pth')
    os.link(src, tmp_path / 'hard.pth')
    bf.text(tmp_path / 'my_cfg.py', f"_base_ = ['{S}']\n")
    bf.text(tmp_path / 'broken.py', 'model = dict(\n')
    (tmp_path / 'deploy.pth').write_bytes(b'an earlier deploy file')
    (tmp_path / 'a_folder').mkdir()
    return tmp_path


ROWS = {
    'out_is_in': (['iter_4.pth', 'iter_4.pth'], ['iter_4.pth', 'same path']),
    'out_symlink': (['iter_4.pth', 'sym.pth'], ['sym.pth', 'symbolic link']),
    'out_hardlink': (['iter_4.pth', 'hard.pth'], ['hard.pth', 'hard link']),
    'out_is_config': (['iter_4.pth', 'my_cfg.py', '--config', 'my_cfg.py'],
                      ['my_cfg.py', 'is the input']),
    'out_exists': (['iter_4.pth', 'deploy.pth'],
                   ['deploy.pth exists', 'never overwritten']),
    'out_is_folder': (['iter_4.pth', 'a_folder'], ['a_folder', 'folder']),
    'out_under_a_file': (['iter_4.pth', 'iter_4.pth/d.pth'],
                         ['iter_4.pth', 'not a folder']),
    'out_read_only_place': (['iter_4.pth', '/proc/d.pth'], ['/proc/d.pth']),
    'missing_config': (['iter_4.pth', 'new.pth', '--config', 'nope.py'],
                       ['nope.py', 'not found']),
    'config_syntax_error': (['iter_4.pth', 'new.pth', '--config',
                             'broken.py'], ['broken.py', 'SyntaxError']),
    'config_is_checkpoint': (['iter_4.pth', 'new.pth', '--config',
                              'iter_4.pth'], ['iter_4.pth', 'not a config']),
    'segformer_config': (['iter_4.pth', 'new.pth', '--config', SEGFORMER],
                         ['segformer_mit-b0_custom.py', 'not SCTNet']),
    'check_shape_too_small': (['iter_4.pth', 'new.pth', '--check-shape', '8',
                               '8'], ['--check-shape 8 8', '>= 32']),
}


@pytest.mark.parametrize('row', list(ROWS))
def test_bad_output_or_option_is_refused(fault_fork, user, row):
    args, names = ROWS[row]
    if '--config' not in args:
        args = args + ['--config', S]
    fault_fork.run(TOOL, args, keep=[user], names=names, rc=1, cwd=user)
    assert not (user / 'new.pth').exists()


def test_killed_while_writing_leaves_nothing_and_reruns(
        fault_fork, files, tmp_path):
    out = tmp_path / 'deploy.pth'
    args = [files['student'], out, '--config', S, '--check-shape', '64', '64']
    killer = bf.kill_when(tmp_path, 'deploy.pth')
    res = fault_fork.call(
        TOOL, args, env=dict(SCTNET_TEST_SLOW_SAVE='deploy.pth:60'))
    killer.join()
    assert res.returncode == -9 and killer.killed, res.output
    assert not out.exists()
    res = fault_fork.call(TOOL, args)
    assert res.returncode == 0, res.output
    assert os.listdir(tmp_path) == ['deploy.pth']
    ckpt = torch.load(str(out), weights_only=True)
    assert 'sctnet_deploy' in ckpt['meta']
