"""SCTNet backbone: a single-branch CNN with CFBlocks and DAPPM."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import (DAPPM, BasicBlock, CFBlock, fuse_conv_bn_sequential,
                      init_sctnet_weights)
from ...io.state_dict import load_file_into
from ..layers.norm import resolve_norm_cfg


@MODELS.register_module()
class SCTNet(BaseModule):
    """SCTNet backbone (Xu et al., AAAI 2024), official parameter layout.

    ====== ===== =============================================== ==========
    stage  scale content                                         channels
    ====== ===== =============================================== ==========
    stem   1/4   ``conv1``: two 3x3 stride-2 conv + BN + ReLU    c
    1      1/4   ``layer1``: 2 BasicBlocks                       c
    2      1/8   ``layer2``: 2 BasicBlocks (first stride 2)      2c
    3      1/16  ``layer3``: 2 BasicBlocks, ``layer3_2`` CFBlock 4c
    4      1/32  ``convdown4`` 3x3/2 conv + BN + ReLU,           8c
                 ``layer4``, ``layer5`` CFBlocks
    DAPPM  1/32  ``spp``                                         2c
    ====== ===== =============================================== ==========

    The last BasicBlock of a stage has no final ReLU; the consumer applies
    it (before stage 2, stage 3, the stage-3 CFBlock and each stage-4
    CFBlock). ``x_out`` is ``cat(stage2, upsample(DAPPM))`` at 1/8.

    Output contract (a tuple, in this order):

    0. ``x_out``  ``[N, 4c, ceil(H/8), ceil(W/8)]``: input of the SCTHead and
       of SDHA.
    1. ``x2``     ``[N, 2c, H/8, W/8]``: stage 2 (no ReLU), input of the
       auxiliary head.
    2. ``x3``     ``[N, 4c, H/16, W/16]``: stage 3 after its CFBlock (BFA).
    3. ``x4``     ``[N, 8c, H/32, W/32]``: stage 4 after the last CFBlock
       (BFA; the official code calls it ``x5``).

    Sizes are ceil-divided at every stride-2 conv, so any input size works;
    the DAPPM output is resized to the stage-2 size.

    Args:
        layer_nums (list[int]): BasicBlocks in stages 1-3 (the fourth entry
            is kept for config compatibility). Default ``[2, 2, 2, 2]``.
        base_channels (int): ``c``: 32 for SCTNet-S, 64 for SCTNet-B.
        spp_channels (int): DAPPM branch width: 64 (S) or 128 (B).
        in_channels (int): image channels. Default 3.
        num_heads (int): heads of the conv attention. Default 8.
        drop_rate (float): dropout in the CFBlock MLPs. Default 0.
        drop_path_rate (float): stochastic depth of the CFBlocks. Default 0.1.
        norm_cfg (dict): normalisation (``SyncBN`` in configs, ``BN`` on CPU
            or one GPU). Default BN.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint='pretrained/SCT-B_Pretrain.pth')`` loads ImageNet
            weights in :meth:`init_weights`; otherwise Kaiming init.
            ``prefix`` (as MMEngine's ``Pretrained``) takes the tensors
            under that prefix of a larger checkpoint (``'backbone.'`` is
            tried anyway); ``strict=True`` refuses a file that would leave
            any backbone tensor uninitialised, naming them (see
            :meth:`load_pretrained`).
    """

    def __init__(self,
                 layer_nums=(2, 2, 2, 2),
                 base_channels: int = 64,
                 spp_channels: int = 128,
                 in_channels: int = 3,
                 num_heads: int = 8,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 norm_cfg: dict = None,
                 pretrained=None,
                 init_cfg=None):
        if pretrained is not None:
            assert init_cfg is None, 'set either pretrained or init_cfg'
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        norm_cfg = resolve_norm_cfg(norm_cfg)
        self.norm_cfg = norm_cfg
        c = base_channels
        self.base_channels = c

        def bn(ch):
            return build_norm_layer(norm_cfg, ch)[1]

        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, stride=2, padding=1), bn(c),
            nn.ReLU(), nn.Conv2d(c, c, 3, stride=2, padding=1), bn(c),
            nn.ReLU())
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(c, c, layer_nums[0])
        self.layer2 = self._make_layer(c, 2 * c, layer_nums[1], stride=2)
        self.layer3 = self._make_layer(2 * c, 4 * c, layer_nums[2], stride=2)
        cf = dict(
            num_heads=num_heads,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg)
        self.layer3_2 = CFBlock(4 * c, 4 * c, **cf)
        self.convdown4 = nn.Sequential(
            nn.Conv2d(4 * c, 8 * c, 3, stride=2, padding=1), bn(8 * c),
            nn.ReLU())
        self.layer4 = CFBlock(8 * c, 8 * c, **cf)
        self.layer5 = CFBlock(8 * c, 8 * c, **cf)
        self.spp = DAPPM(8 * c, spp_channels, 2 * c, norm_cfg=norm_cfg)

    @property
    def out_channels(self) -> Tuple[int, int, int, int]:
        """Channels of the four outputs (x_out, x2, x3, x4)."""
        c = self.base_channels
        return (4 * c, 2 * c, 4 * c, 8 * c)

    def _make_layer(self, in_ch, out_ch, blocks, stride=1):
        downsample = None
        if stride != 1 or in_ch != out_ch:
            downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride),
                build_norm_layer(self.norm_cfg, out_ch)[1])
        layers = [
            BasicBlock(in_ch, out_ch, stride, downsample,
                       norm_cfg=self.norm_cfg)
        ]
        for i in range(1, blocks):
            layers.append(
                BasicBlock(
                    out_ch,
                    out_ch,
                    no_relu=(i == blocks - 1),
                    norm_cfg=self.norm_cfg))
        return nn.Sequential(*layers)

    def init_weights(self) -> None:
        """Kaiming init, then the ImageNet checkpoint if ``init_cfg`` says so.

        Raises:
            CheckpointNotFoundError: the pretrained file is missing (the
                message names it and the fix).
            CheckpointMismatchError: nothing in the file fits the backbone
                or, with ``init_cfg.strict=True``, a tensor is missing or
                has another shape.
        """
        init_sctnet_weights(self)
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(
                cfg.get('checkpoint'),
                prefix=cfg.get('prefix'),
                strict=cfg.get('strict', False))
        self._is_init = True

    def load_pretrained(self,
                        filename: str,
                        prefix: str = None,
                        strict: bool = False) -> dict:
        """Load ImageNet-pretrained (or any SCTNet backbone) weights.

        Args:
            filename: path or URL: a bare backbone state dict (the official
                ``SCT-*_Pretrain.pth``), ``{'state_dict': ...}``, or a whole
                segmentor checkpoint (``backbone.*``).
            prefix: tensors under this prefix are used, without it.
            strict: refuse the file, naming the tensors, when any backbone
                tensor is missing from it or has another shape. Otherwise
                every fitting tensor is loaded and the rest is logged (the
                official files' exact content is not published, so this is
                the default). Tensors the backbone has no place for (an
                ImageNet classifier) are ignored either way, and listed.

        Returns:
            ``dict(missing, mismatched, unexpected, loaded)``.
        """
        size = 'S' if self.base_channels == 32 else 'B'
        return load_file_into(
            self,
            filename,
            what='ImageNet-pretrained SCTNet backbone',
            fix=(f'Put the official SCT-{size}_Pretrain.pth (see the '
                 "README's model zoo) at that path, point "
                 'model.backbone.init_cfg.checkpoint to it, or train from '
                 'scratch with --cfg-options model.backbone.init_cfg=None.'),
            prefixes=(prefix or 'backbone.', 'backbone.'),
            strict=strict,
            allow_unexpected=True,
            detail=f'This backbone is SCTNet-{size} (base_channels '
            f'{self.base_channels}).')

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'SCTNet':
        """Inference form of the layers the backbone owns, in place: the
        stem's and ``convdown4``'s conv-BN pairs folded, their ReLUs in
        place. The blocks (BasicBlock, CFBlock with its attention and MLP,
        DAPPM) have their own ``switch_to_deploy``;
        :func:`mmseg_sctnet.deploy.switch_to_deploy` walks the model and
        calls each. ``forward`` is unchanged."""
        if isinstance(self.conv1[1], _BatchNorm):  # not deployed yet
            self.conv1 = fuse_conv_bn_sequential(self.conv1)
            self.convdown4 = fuse_conv_bn_sequential(self.convdown4)
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        x1 = self.layer1(self.conv1(x))  # c, 1/4 (no ReLU)
        x2 = self.layer2(self.relu(x1))  # 2c, 1/8 (no ReLU)
        x3 = self.layer3(self.relu(x2))  # 4c, 1/16 (no ReLU)
        x3 = self.layer3_2(self.relu(x3))  # 4c, 1/16, CFBlock
        x4 = self.convdown4(x3)  # 8c, 1/32, ends with ReLU
        x4 = self.layer4(x4)
        x4 = self.layer5(self.relu(x4))  # 8c, 1/32
        x6 = self.spp(x4)  # 2c, 1/32
        x6 = F.interpolate(
            x6, size=x2.shape[2:], mode='bilinear', align_corners=False)
        x_out = torch.cat([x2, x6], dim=1)  # 4c, 1/8
        return x_out, x2, x3, x4
