#!/usr/bin/env python
"""Draw docs/figures/sctnet_architecture.png (SCTNet and SIAM) with matplotlib.

    python docs/figures/make_architecture.py [--out PATH]

Top: the single-branch CNN that is deployed (SCTNet-S / -B channel widths,
strides). Bottom: the training-only part, the frozen SegFormer teacher and
SIAM (BFA on stages 3 and 4, SDHA through the teacher's decoder head), as in
the paper and the official code (docs/faq.md: where SIAM lives).
"""
import argparse
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STUDENT = '#dbe9f6'
STUDENT_EDGE = '#2b6cb0'
CF = '#c6e2c3'
CF_EDGE = '#2f7d32'
TEACHER = '#fde2cf'
TEACHER_EDGE = '#c05621'
SIAM = '#f3d9f7'
SIAM_EDGE = '#8e44ad'
AUX = '#eeeeee'


def box(ax, x, y, w, h, title, lines=(), face=STUDENT, edge=STUDENT_EDGE,
        dashed=False, fs=9.5):
    ax.add_patch(
        FancyBboxPatch((x, y), w, h,
                       boxstyle='round,pad=0.02,rounding_size=0.08',
                       fc=face, ec=edge, lw=1.6,
                       ls='--' if dashed else '-'))
    ax.text(x + w / 2, y + h - 0.17, title, ha='center', va='top',
            fontsize=fs + 1, weight='bold')
    for i, line in enumerate(lines):
        ax.text(x + w / 2, y + h - 0.55 - 0.32 * i, line, ha='center',
                va='top', fontsize=fs - 1)
    return (x, y, w, h)


def arrow(ax, p, q, color='#333333', dashed=False, lw=1.5, rad=0.0,
          text=None, text_xy=None, fs=8.5, style='-|>'):
    ax.add_patch(
        FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=13,
                        color=color, lw=lw, ls='--' if dashed else '-',
                        connectionstyle=f'arc3,rad={rad}'))
    if text:
        tx, ty = text_xy or ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)
        ax.text(tx, ty, text, fontsize=fs, color=color, ha='center',
                va='center',
                bbox=dict(fc='white', ec='none', alpha=0.85, pad=1))


def right(b, dy=0.5):
    return (b[0] + b[2], b[1] + b[3] * dy)


def left(b, dy=0.5):
    return (b[0], b[1] + b[3] * dy)


def top(b, dx=0.5):
    return (b[0] + b[2] * dx, b[1] + b[3])


def bottom(b, dx=0.5):
    return (b[0] + b[2] * dx, b[1])


def draw(out):
    fig, ax = plt.subplots(figsize=(19, 10.6))
    ax.set_xlim(0, 38)
    ax.set_ylim(0, 21.2)
    ax.axis('off')
    ax.text(0.3, 20.9,
            'SCTNet: single-branch CNN (deployed) + training-only '
            'transformer guidance (SIAM)',
            fontsize=15, weight='bold', va='top')
    ax.text(0.3, 20.1,
            'channel widths for SCTNet-S / SCTNet-B (c = 32 / 64); scales '
            'relative to the input size H x W',
            fontsize=10.5, va='top', color='#444444')

    # ---------------- deployed student ----------------
    ax.add_patch(
        FancyBboxPatch((0.2, 10.9), 37.6, 8.5,
                       boxstyle='round,pad=0.02,rounding_size=0.2',
                       fc='none', ec=STUDENT_EDGE, lw=1.0, alpha=0.6))
    ax.text(0.5, 19.2, 'Student: the network that is deployed',
            color=STUDENT_EDGE, fontsize=11.5, weight='bold', va='top')
    y, h = 14.3, 3.3
    img = box(ax, 0.5, y + 0.65, 2.1, 2.0, 'image', ['H x W x 3'],
              face='white', edge='#555555')
    stem = box(ax, 3.0, y, 3.3, h, 'Stem',
               ['2 x conv3x3 s2', '+ BN + ReLU', '1/4, 32 / 64'])
    s1 = box(ax, 6.7, y, 3.1, h, 'Stage 1', ['2 BasicBlocks', '1/4',
                                             '32 / 64'])
    s2 = box(ax, 10.2, y, 3.3, h, 'Stage 2', ['2 BasicBlocks', '(first s2)',
                                              '1/8, 64 / 128'])
    s3 = box(ax, 13.9, y, 3.7, h, 'Stage 3', ['2 BasicBlocks (s2)',
                                              '1/16, 128 / 256'])
    s4 = box(ax, 18.0, y, 3.9, h, 'Stage 4', ['conv3x3 s2+BN+ReLU', '1/32',
                                              '256 / 512'])
    dappm = box(ax, 22.3, y, 3.5, h, 'DAPPM', ['avg-pool 5/9/17', '+ global',
                                               '1/32, 64 / 128'])
    fuse = box(ax, 26.2, y, 3.3, h, 'x_out', ['DAPPM up to 1/8', 'concat',
                                              'stage 2: 4c'])
    head = box(ax, 29.9, y, 3.4, h, 'SCTHead', ['BN-ReLU-conv3x3',
                                                'BN-ReLU-1x1', 'logits 1/8'])
    pred = box(ax, 33.7, y + 0.65, 3.8, 2.0, 'prediction',
               ['bilinear up to H x W'], face='white', edge='#555555')
    chain = [img, stem, s1, s2, s3, s4, dappm, fuse, head, pred]
    for a, b in zip(chain[:-1], chain[1:]):
        arrow(ax, right(a), left(b))
    arrow(ax, top(s2), top(fuse, 0.3), rad=-0.16,
          text='stage-2 output (1/8)', text_xy=(20.0, 18.75))
    for b, n in ((s3, '1 CFBlock'), (s4, '2 CFBlocks')):
        ax.add_patch(
            FancyBboxPatch((b[0] + 0.35, b[1] + 0.2), b[2] - 0.7, 0.6,
                           boxstyle='round,pad=0.01,rounding_size=0.05',
                           fc=CF, ec=CF_EDGE, lw=1))
        ax.text(b[0] + b[2] / 2, b[1] + 0.5, n, fontsize=9,
                ha='center', va='center', color=CF_EDGE, weight='bold')
    aux = box(ax, 10.2, 11.2, 3.3, 1.75, 'AU_SCTHead',
              ['training only', 'CE x 0.4'], face=AUX, edge='#777777',
              dashed=True, fs=8.8)
    arrow(ax, bottom(s2), top(aux), color='#777777', dashed=True)
    cfd = box(ax, 0.5, 11.1, 9.3, 2.85, 'CFBlock (conv-former block)', [
        'x = x + DropPath(ConvAttention(BN(x)))',
        'x = x + DropPath(MLP(x))',
        'ConvAttention: learnable 7x1 and 1x7 kernels K,',
        'conv(x, K) -> dual norm -> conv( . , K^T)',
        'MLP: BN -> conv3x3 -> GELU -> conv3x3',
    ], face=CF, edge=CF_EDGE, fs=8.8)
    arrow(ax, bottom(s3, 0.15), right(cfd, 0.9), color=CF_EDGE,
          dashed=True, lw=1.0)
    ax.text(22.3, 13.4,
            'At test time only this row runs: the teacher, the SIAM '
            'projections\nand AU_SCTHead are not even built '
            '(train_cfg=None), so inference\nneeds no teacher file. '
            'Any input size works (not only multiples of 32).',
            fontsize=9, va='top', color=STUDENT_EDGE)

    # ---------------- teacher + SIAM ----------------
    ax.add_patch(
        FancyBboxPatch((0.2, 0.2), 37.6, 10.3,
                       boxstyle='round,pad=0.02,rounding_size=0.2',
                       fc='none', ec=TEACHER_EDGE, lw=1.0, ls='--'))
    ax.text(0.5, 10.3,
            'Training only: frozen SegFormer teacher (MiT-B2 for S, MiT-B3 '
            'for B; eval mode, no gradients, sees the same augmented crop) '
            '+ SIAM = BFA + SDHA',
            color=TEACHER_EDGE, fontsize=11.5, weight='bold', va='top')
    ty, th = 0.8, 2.7
    timg = box(ax, 0.5, ty + 0.35, 2.1, 2.0, 'image', ['same crop'],
               face='white', edge='#555555', dashed=True)
    t1 = box(ax, 6.7, ty, 3.1, th, 'MiT stage 1', ['1/4, 64'], TEACHER,
             TEACHER_EDGE, True)
    t2 = box(ax, 10.2, ty, 3.3, th, 'MiT stage 2', ['1/8, 128'], TEACHER,
             TEACHER_EDGE, True)
    t3 = box(ax, 13.9, ty, 3.7, th, 'MiT stage 3', ['1/16, 320'], TEACHER,
             TEACHER_EDGE, True)
    t4 = box(ax, 18.0, ty, 3.9, th, 'MiT stage 4', ['1/32, 512'], TEACHER,
             TEACHER_EDGE, True)
    tcat = box(ax, 22.3, ty, 3.5, th, 'SegFormer head',
               ['MLP per stage: 256', 'up to 1/4, concat', '1024 channels'],
               TEACHER, TEACHER_EDGE, True, fs=8.8)
    tfuse = box(ax, 26.2, ty, 3.3, th, 'fusion_conv',
                ['1x1 + BN + ReLU', 'frozen, shared'], TEACHER, TEACHER_EDGE,
                True, fs=8.8)
    tcls = box(ax, 29.9, ty, 3.4, th, 'classifier',
               ['1x1, frozen,', 'shared'], TEACHER, TEACHER_EDGE, True,
               fs=8.8)
    for a, b in ((timg, t1), (t1, t2), (t2, t3), (t3, t4), (t4, tcat),
                 (tcat, tfuse), (tfuse, tcls)):
        arrow(ax, right(a), left(b), color=TEACHER_EDGE, dashed=True)

    p3 = box(ax, 13.9, 6.9, 3.7, 1.7, 'convstage3', ['1x1 -> 320'], SIAM,
             SIAM_EDGE, True, fs=8.8)
    p4 = box(ax, 18.0, 6.9, 3.9, 1.7, 'convstage4', ['1x1 -> 512'], SIAM,
             SIAM_EDGE, True, fs=8.8)
    pf = box(ax, 25.6, 6.6, 4.5, 2.5, 'feature_transforms', [
        '1x1 -> 1024, resize to 1/4,', 're-standardised to the',
        "teacher's channel statistics"
    ], SIAM, SIAM_EDGE, True, fs=8.6)
    arrow(ax, bottom(s3, 0.6), top(p3, 0.6), color=SIAM_EDGE, dashed=True)
    arrow(ax, bottom(s4), top(p4), color=SIAM_EDGE, dashed=True)
    arrow(ax, bottom(fuse), top(pf, 0.53), color=SIAM_EDGE, dashed=True)
    arrow(ax, bottom(p3, 0.6), top(t3, 0.6), color=SIAM_EDGE,
          style='<|-|>', text='BFA\nCWD x 15', text_xy=(16.1, 5.15))
    arrow(ax, bottom(p4), top(t4), color=SIAM_EDGE, style='<|-|>',
          text='BFA\nCWD x 15', text_xy=(19.95, 5.15))
    arrow(ax, bottom(pf, 0.53), top(tfuse, 0.5), color=SIAM_EDGE,
          text='SDHA: the student\nfeature goes through\nthe frozen head',
          text_xy=(27.85, 5.0))
    ax.text(33.65, 5.0,
            'SDHA aligns the results\nwith the teacher\'s own:\n'
            'decoder feature (CWD x 15)\nlogits (CWD x 3)',
            fontsize=8.8, color=SIAM_EDGE, ha='center', va='center',
            bbox=dict(fc='white', ec=SIAM_EDGE, lw=0.8, pad=3))
    ax.text(0.5, 9.3,
            'Loss = CE(main) + 0.4 CE(aux) + the four SIAM terms,\n'
            'each logged on its own: siam.loss_sdha_logits,\n'
            'siam.loss_sdha_feat, siam.loss_bfa_stage4,\n'
            'siam.loss_bfa_stage3 (CWD: channel-wise KL, tau 4).\n\n'
            'Code: mmseg_sctnet/models/\n'
            '  decode_heads/vit_guidance_head.py (VitGuidanceHead)\n'
            '  losses/alignment_loss.py\n'
            '  segmentors/encoder_decoder_distill.py',
            fontsize=9.2, va='top', color='#333333', family='monospace')

    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches='tight', facecolor='white')
    plt.close(fig)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument(
        '--out',
        default=osp.join(osp.dirname(osp.abspath(__file__)),
                         'sctnet_architecture.png'),
        help='output PNG (default: next to this script)')
    args = p.parse_args(argv)
    print('wrote', draw(args.out))


if __name__ == '__main__':
    main()
