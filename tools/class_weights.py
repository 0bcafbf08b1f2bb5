#!/usr/bin/env python
"""Class weights for the cross-entropy from a dataset's label frequencies.

    python tools/class_weights.py CONFIG [--split train|val|test]
                                  [--method median|enet] [--no-normalize]
                                  [--cfg-options k=v ...]

Reads every label file of the split through the config's dataset class and
its LoadAnnotations (class subsets, reduce_zero_label as in training;
pixels at the ignore index 255 are not counted) and prints, per class, the
pixel count, the frequency and the weight, then the --cfg-options and the
config lines that put the weights into the decode head's and the auxiliary
head's CrossEntropyLoss (class_weight). Methods: median-frequency
balancing (median) and ENet's 1 / ln(1.02 + p) (enet); the weights are
scaled to a mean of 1 over the labelled pixels unless --no-normalize.
Nothing is written. docs/custom_dataset.md says when to use them.
Logic: :func:`mmseg_sctnet.datasets.class_weights.report_class_weights`.
"""
import argparse

from mmengine.config import DictAction

from mmseg_sctnet.datasets.class_weights import METHODS, report_class_weights
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Class weights from label frequencies (see the module '
        'doc).')
    p.add_argument('config', help='config file')
    p.add_argument(
        '--split',
        default='train',
        choices=['train', 'val', 'test'],
        help='which dataloader of the config to count (default train)')
    p.add_argument(
        '--method',
        default='median',
        choices=list(METHODS),
        help='median: median-frequency balancing; enet: 1 / ln(1.02 + p) '
        '(default median)')
    p.add_argument(
        '--no-normalize',
        action='store_true',
        help="print the formula's weights, not scaled to a mean of 1 over "
        'the labelled pixels')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=/data/cityscapes')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    return report_class_weights(
        args.config,
        split=args.split,
        method=args.method,
        normalize=not args.no_normalize,
        cfg_options=args.cfg_options,
        progress=not args.quiet)


if __name__ == '__main__':
    main()
