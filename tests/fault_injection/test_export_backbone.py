"""tools/export_backbone.py refuses a pretraining checkpoint that lacks a
backbone tensor: one ``error:`` line naming the file and the tensor, no
output written, the input intact."""
import os.path as osp

import torch


def test_missing_backbone_tensor_is_named(fault, tmp_path):
    import mmseg_sctnet  # noqa: F401  (registers SCTNet)
    from mmseg_sctnet.pretrain.convert import build_reference_backbone
    backbone = build_reference_backbone(
        dict(type='SCTNet', base_channels=32, spp_channels=64))
    state = {
        'backbone.' + k: v
        for k, v in backbone.state_dict().items() if k != 'layer4.attn_l.kv'
    }
    src = str(tmp_path / 'epoch_300.pth')
    torch.save(dict(state_dict=state, meta=dict(epoch=300)), src)
    out = str(tmp_path / 'SCT-S_Pretrain.pth')
    fault.run(
        'tools/export_backbone.py', [src, out],
        keep=[src],
        names=[src, 'layer4.attn_l.kv'])
    assert not osp.exists(out)
