#!/usr/bin/env python
"""Check the data of a config before training on it.

    python tools/check_dataset.py CONFIG [--split train|val|test]
                                  [--max-files N] [--strict]
                                  [--cfg-options k=v ...]

Builds the split's dataset with the real MMSegmentation class of the config
and reports images without labels (and labels without images), unreadable
files, image/label size mismatches, label values outside
[0, num_classes) other than the ignore index (e.g. Cityscapes labelIds
where labelTrainIds are expected), a wrong reduce_zero_label, and splits
where nearly every pixel is ignored -- naming the files and values and the
fix. Every file is decoded unless --max-files is given (training itself
checks a sample when it starts); a bad file is reported and the sweep goes
on, and every file with a problem is listed at the end. Exit status: 1 on
errors (and on warnings with --strict), else 0.
Logic: :func:`mmseg_sctnet.apis.dataset_check.run_dataset_check`.
"""
import argparse
import sys

from mmengine.config import DictAction

from mmseg_sctnet.apis.dataset_check import run_dataset_check
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Check the dataset of a config (see the module doc).')
    p.add_argument('config', help='config file')
    p.add_argument(
        '--split',
        default='train',
        choices=['train', 'val', 'test'],
        help='which dataloader of the config to check (default train)')
    p.add_argument(
        '--max-files',
        type=int,
        default=None,
        help='decode at most N (image, label) pairs, a fixed random sample '
        '(default: all); file existence is checked for every entry')
    p.add_argument(
        '--strict', action='store_true', help='exit 1 on warnings too')
    p.add_argument('--seed', type=int, default=0, help='seed of the sample')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=/data/cityscapes')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> int:
    args = parse_args(argv)
    return run_dataset_check(
        args.config,
        split=args.split,
        max_files=args.max_files,
        strict=args.strict,
        seed=args.seed,
        progress=not args.quiet,
        cfg_options=args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
