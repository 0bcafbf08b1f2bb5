"""An independent, purely functional SCTNet forward for parity tests.

Written from the published description (shared/reference/SCTNET.md, the
official release's forward semantics) directly on a flat state dict with the
official key names, using only ``torch.nn.functional``. It shares no code
with ``mmseg_sctnet`` so that a test comparing the two catches a mistake in
either. Inference semantics (BatchNorm with running statistics, no dropout,
no drop-path).
"""
import torch
import torch.nn.functional as F


def _bn(sd, p, x, eps=1e-5):
    return F.batch_norm(x, sd[p + '.running_mean'], sd[p + '.running_var'],
                        sd[p + '.weight'], sd[p + '.bias'], False, 0.0, eps)


def _conv(sd, p, x, stride=1, padding=0):
    return F.conv2d(x, sd[p + '.weight'], sd.get(p + '.bias'), stride,
                    padding)


def _basic_block(sd, p, x, stride, relu_out):
    out = F.relu(_bn(sd, p + '.bn1', _conv(sd, p + '.conv1', x, stride, 1)))
    out = _bn(sd, p + '.bn2', _conv(sd, p + '.conv2', out, 1, 1))
    if p + '.downsample.0.weight' in sd:
        x = _bn(sd, p + '.downsample.1',
                _conv(sd, p + '.downsample.0', x, stride, 0))
    out = out + x
    return F.relu(out) if relu_out else out


def _stage(sd, p, x, stride):
    x = _basic_block(sd, p + '.0', x, stride, relu_out=True)
    return _basic_block(sd, p + '.1', x, 1, relu_out=False)


def _attention(sd, p, x, heads=8):
    x = _bn(sd, p + '.norm', x)
    out = 0
    for name, pad in (('kv', (3, 0)), ('kv3', (0, 3))):
        k = sd[p + '.' + name]
        a = F.conv2d(x, k, padding=pad)
        n, c, h, w = a.shape
        a = a.reshape(n, heads, c // heads, h * w).softmax(dim=-1)
        a = a / (a.sum(dim=2, keepdim=True) + 1e-6)
        a = a.reshape(n, c, h, w)
        out = out + F.conv2d(a, k.transpose(0, 1), padding=pad)
    return out


def _mlp(sd, p, x):
    x = _bn(sd, p + '.norm', x, eps=1e-6)
    x = F.gelu(_conv(sd, p + '.conv1', x, 1, 1))
    return _conv(sd, p + '.conv2', x, 1, 1)


def _cfblock(sd, p, x):
    x = x + _attention(sd, p + '.attn_l', x)
    return x + _mlp(sd, p + '.mlp_l', x)


def _brc(sd, p, x, first, padding=0):
    """BN (index ``first``) -> ReLU -> conv (index ``first + 2``)."""
    x = F.relu(_bn(sd, f'{p}.{first}', x))
    return _conv(sd, f'{p}.{first + 2}', x, 1, padding)


def _dappm(sd, p, x):
    size = x.shape[2:]
    levels = [_brc(sd, p + '.scale0', x, 0)]
    pools = [
        lambda t: F.avg_pool2d(t, 5, 2, 2),
        lambda t: F.avg_pool2d(t, 9, 4, 4),
        lambda t: F.avg_pool2d(t, 17, 8, 8),
        lambda t: F.adaptive_avg_pool2d(t, 1),
    ]
    for i, pool in enumerate(pools, start=1):
        y = _brc(sd, f'{p}.scale{i}', pool(x), 1)
        y = F.interpolate(y, size, mode='bilinear', align_corners=False)
        levels.append(_brc(sd, f'{p}.process{i}', y + levels[-1], 0, 1))
    return (_brc(sd, p + '.compression', torch.cat(levels, 1), 0) +
            _brc(sd, p + '.shortcut', x, 0))


def backbone_forward(sd, x):
    """Returns ``(x_out, stage2, stage3, stage4)`` like the official code."""
    b = 'backbone'
    x = F.relu(_bn(sd, b + '.conv1.1', _conv(sd, b + '.conv1.0', x, 2, 1)))
    x = F.relu(_bn(sd, b + '.conv1.4', _conv(sd, b + '.conv1.3', x, 2, 1)))
    x1 = _stage(sd, b + '.layer1', x, 1)
    x2 = _stage(sd, b + '.layer2', F.relu(x1), 2)
    x3 = _stage(sd, b + '.layer3', F.relu(x2), 2)
    x3 = _cfblock(sd, b + '.layer3_2', F.relu(x3))
    x4 = F.relu(_bn(sd, b + '.convdown4.1',
                    _conv(sd, b + '.convdown4.0', x3, 2, 1)))
    x4 = _cfblock(sd, b + '.layer4', F.relu(x4))
    x5 = _cfblock(sd, b + '.layer5', F.relu(x4))
    x6 = F.interpolate(
        _dappm(sd, b + '.spp', x5),
        x2.shape[2:],
        mode='bilinear',
        align_corners=False)
    return torch.cat([x2, x6], 1), x2, x3, x5


def head_forward(sd, p, x):
    x = _conv(sd, p + '.conv1', F.relu(_bn(sd, p + '.bn1', x)), 1, 1)
    return _conv(sd, p + '.conv_seg', F.relu(_bn(sd, p + '.bn2', x)))


@torch.no_grad()
def sctnet_logits(sd, img):
    """SCTHead logits at 1/8 of ``img`` (``[N, K, ceil(H/8), ceil(W/8)]``)."""
    sd = {k: v.float() for k, v in sd.items()}
    return head_forward(sd, 'decode_head', backbone_forward(sd, img)[0])
