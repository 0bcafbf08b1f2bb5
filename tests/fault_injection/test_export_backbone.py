"""tools/export_backbone.py under bad input (docs/reliability.md, "Bad
input").

Every row: exit status 1, one ``error:`` line naming the file and what is
wrong, no traceback, every file the user had byte-identical, no output.
"""
import os
import os.path as osp

import bad_files as bf
import pytest

TOOL = 'tools/export_backbone.py'
SEG_B = 'configs/sctnet/cityscapes/sctnet-b_seg50_8x2_160k_cityscapes.py'


def _sctnet_s_state():
    import mmseg_sctnet  # noqa: F401  (registers SCTNet)
    from mmseg_sctnet.pretrain.backbone import build_reference_backbone
    backbone = build_reference_backbone(
        dict(type='SCTNet', base_channels=32, spp_channels=64))
    return backbone.state_dict()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """name -> path of every input kind in the table (written once)."""
    d = tmp_path_factory.mktemp('export_backbone')
    bb = {'backbone.' + k: v for k, v in _sctnet_s_state().items()}
    p = {}
    p['complete'] = bf.save(d / 'epoch_300.pth', bb, meta=dict(epoch=300))
    p['missing_tensor'] = bf.save(d / 'epoch_299.pth', {
        k: v
        for k, v in bb.items() if k != 'backbone.layer4.attn_l.kv'
    })
    p['no_backbone'] = bf.save(
        d / 'segformer_head.pth',
        {'decode_head.conv_seg.weight': bb['backbone.conv1.0.weight']})
    p['text'] = bf.text(d / 'notes.pth')
    p['truncated'] = bf.truncated(d / 'truncated.pth', dict(state_dict=bb))
    return p


# (input kind, extra args, what the one error line must say besides the
# file name)
INPUTS = [
    ('missing_tensor', [], 'layer4.attn_l.kv'),
    ('no_backbone', [], 'no backbone.* tensors'),
    ('text', [], 'not a PyTorch checkpoint'),
    ('truncated', [], 'cut short'),
    ('complete', ['--weights', 'ema'], 'no EMA weights'),
    ('complete', ['--config', SEG_B], 'differ in shape'),
]


@pytest.mark.parametrize(
    'kind,extra,says',
    INPUTS,
    ids=[f'{k}{"".join(e[:1])}' for k, e, _ in INPUTS])
def test_bad_input_is_refused(fault_fork, files, tmp_path, kind, extra, says):
    out = tmp_path / 'SCT-S_Pretrain.pth'
    res = fault_fork.run(
        TOOL, [files[kind], out] + extra,
        keep=[osp.dirname(files[kind])],
        names=[osp.basename(files[kind]), says],
        rc=1)
    assert not out.exists(), res.output


def test_output_is_the_input(fault_fork, files, tmp_path):
    src = tmp_path / 'epoch_300.pth'
    with open(files['complete'], 'rb') as f:
        src.write_bytes(f.read())
    os.symlink(src, tmp_path / 'sym.pth')
    fault_fork.run(
        TOOL, [src, tmp_path / 'sym.pth', '--force'],
        keep=[tmp_path],
        names=['sym.pth', 'never writes over its input'],
        rc=1)


def test_missing_input_fresh_interpreter(fault, tmp_path):
    """The one case run by a fresh ``python tools/export_backbone.py``."""
    missing = tmp_path / 'epoch_300.pth'
    fault.run(TOOL, [missing, tmp_path / 'out.pth'], names=[missing], rc=1)
