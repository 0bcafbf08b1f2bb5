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
checks a sample when it starts). Exit status: 1 on errors (and on warnings
with --strict), else 0.
"""
import argparse
import sys

import _bootstrap  # noqa: F401


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
    from mmengine.config import DictAction
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=/data/cityscapes')
    return p.parse_args(argv)


def main(argv=None) -> int:
    import mmseg_sctnet  # noqa: F401  (registers SCTNet, applies compat)
    from mmengine.config import Config
    from mmseg_sctnet.compat import exit_on_user_error
    from mmseg_sctnet.datasets.checker import check_config

    @exit_on_user_error
    def run():
        args = parse_args(argv)
        from mmseg_sctnet.compat.errors import DatasetCheckError
        import os.path as osp
        if not osp.isfile(args.config):
            raise DatasetCheckError(
                f'config file not found: {args.config} (resolved to '
                f'{osp.abspath(args.config)})')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        report = check_config(
            cfg,
            split=args.split,
            max_files=args.max_files,
            seed=args.seed,
            progress=not args.quiet)
        print()
        print(report.format(values=True))
        if report.errors:
            print(f'\n{len(report.errors)} error(s): training on this split '
                  'would fail or learn the wrong thing; fix them first.')
            return 1
        if report.warnings:
            print(f'\n{len(report.warnings)} warning(s): read them; '
                  'tools/train.py stops on warnings unless '
                  '--allow-dataset-warnings is given.')
            return 1 if args.strict else 0
        print('\nNo problems found.')
        return 0

    return run()


if __name__ == '__main__':
    sys.exit(main())
