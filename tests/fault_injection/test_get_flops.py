"""tools/get_flops.py under bad input (docs/reliability.md).

Every refusal comes before the model is built (the JSON output is checked
first), so these rows cost a fraction of a second each.
"""
import os

import bad_files as bf
import pytest

TOOL = 'tools/get_flops.py'
CFG = 'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py'
DATA = 'configs/_base_/datasets/cityscapes.py'
SEGFORMER = 'configs/custom/segformer_mit-b0_custom.py'


@pytest.fixture
def user(tmp_path):
    """A user's folder: a config inheriting an official one, a config
    with a syntax error, one with a misspelled model type, a checkpoint,
    an existing JSON."""
    d = tmp_path
    bf.text(d / 'my_sctnet.py', f"_base_ = ['{os.path.abspath(CFG)}']\n")
    bf.text(d / 'broken.py', "model = dict(type='EncoderDecoder'\n")
    bf.text(d / 'typo.py', f"_base_ = ['{os.path.abspath(CFG)}']\n"
            "model = dict(backbone=dict(type='SCTNetBackbonez'))\n")
    bf.save(d / 'model.pth', {})
    bf.text(d / 'flops.json', '{"gflops": 16.0}\n')
    os.symlink(d / 'my_sctnet.py', d / 'cfg_link.json')
    (d / 'a_folder').mkdir()
    return d


# (args relative to the user folder, what the error line names)
ROWS = {
    'missing_config': (['nope.py'], ['nope.py', 'not found']),
    'config_is_folder': (['a_folder'], ['a_folder', 'is a folder']),
    'config_is_checkpoint': (['model.pth'], ['model.pth', 'not a config']),
    'syntax_error': (['broken.py'], ['broken.py', 'SyntaxError']),
    'no_model': ([DATA, '--shape', '64'], [DATA, 'defines no model']),
    'unknown_model_type': (['typo.py', '--shape', '64'],
                           ['typo.py', 'SCTNetBackbonez']),
    'no_default_shape': (['my_sctnet.py'],
                         ['my_sctnet.py', 'no default input size']),
    'deploy_on_segformer': ([SEGFORMER, '--shape', '64', '--deploy'],
                            ['segformer_mit-b0_custom.py', 'not SCTNet']),
    'shape_3_numbers': ([CFG, '--shape', '1', '2', '3'], ['--shape', '3']),
    'shape_too_small': ([CFG, '--shape', '16'], ['--shape 16 16', '>= 32']),
    'shape_zero': ([CFG, '--shape', '0', '64'], ['--shape 0 64']),
    'json_exists': ([CFG, '--json', 'flops.json'],
                    ['flops.json exists', 'never overwritten']),
    'json_is_config': (['my_sctnet.py', '--shape', '64', '--json',
                        'my_sctnet.py'], ['my_sctnet.py', 'is the input']),
    'json_links_to_config': (['my_sctnet.py', '--shape', '64', '--json',
                              'cfg_link.json'],
                             ['cfg_link.json', 'symbolic link']),
    'json_is_folder': ([CFG, '--json', 'a_folder'], ['a_folder']),
    'json_under_a_file': ([CFG, '--json', 'model.pth/f.json'],
                          ['model.pth', 'not a folder']),
    'json_read_only_place': ([CFG, '--json', '/proc/f.json'],
                             ['/proc/f.json']),
}


@pytest.mark.parametrize('row', list(ROWS))
def test_bad_input_is_refused(fault_fork, user, row):
    args, names = ROWS[row]
    args = [
        os.path.abspath(a) if a in (CFG, DATA, SEGFORMER) else a for a in args
    ]
    fault_fork.run(
        TOOL, args, keep=[user], names=names, rc=1, cwd=user)


def test_missing_config_fresh_interpreter(fault, tmp_path):
    fault.run(TOOL, [tmp_path / 'sctnet.py'], names=['sctnet.py'], rc=1)
