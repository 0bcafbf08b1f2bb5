"""The Runner of a run and what every run's config gets.

* :func:`build_runner`: ``Runner.from_cfg`` (or the config's registered
  ``runner_type``), a config argument a component does not take being one
  ``error:`` line;
* :class:`QuietConsoleRunner`: MMEngine's ``Runner`` with a quieter
  console (the demo and the experiments use it);
* :func:`ensure_reliability_hooks`, :func:`make_run_names_unique`: what
  the tools add to every run's config.
"""
import logging
import os.path as osp
from typing import List

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..io.config import REPO_ROOT, explain_build_errors, load_config

__all__ = [
    'build_runner', 'QuietConsoleRunner', 'ensure_reliability_hooks',
    'make_run_names_unique', 'runtime_base'
]


def build_runner(cfg: Config, runner_cls=None):
    """``runner_cls.from_cfg(cfg)``; by default MMEngine's ``Runner``, or
    the registered ``cfg.runner_type`` (as MMSegmentation's tools do).
    A config argument a component does not take is one ``error:`` line."""
    with explain_build_errors(cfg, cfg.filename or 'the config'):
        if runner_cls is not None:
            return runner_cls.from_cfg(cfg)
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)


class _DropVerbose(logging.Filter):
    """Drops the long blocks MMEngine logs when a runner starts."""
    DROP = ('System environment:', 'Config:\n', 'Hooks will be executed',
            'paramwise_options --', '- torch.Size(')

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(d in msg for d in self.DROP)


class QuietConsoleRunner(Runner):
    """MMEngine's ``Runner`` whose console leaves out the environment
    report, config dump, hook order and per-parameter optimizer lines; the
    run's log file keeps them (``build_logger``, a public method of
    ``Runner``, adds a filter to the console handler only)."""

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        for h in logger.handlers:
            if type(h) is logging.StreamHandler:  # not the FileHandler
                h.addFilter(_DropVerbose())
        return logger


def runtime_base() -> str:
    """``configs/_base_/default_runtime.py`` of this repository."""
    return osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')


def ensure_reliability_hooks(cfg: Config) -> List[str]:
    """Add back the reliability hooks a config's ``custom_hooks`` dropped.

    A leaf config that sets ``custom_hooks = [...]`` replaces the base list
    (MMEngine merges dicts, not lists), which would silently switch off the
    dataset check, the non-finite-loss stop and exact resume. They are
    added back from ``configs/_base_/default_runtime.py``, with a log line;
    ``reliability_hooks = False`` in the config keeps the list as written
    (``dataset_check = dict(enable=False)`` switches off only the data
    check). Returns the names added.
    """
    if not cfg.get('reliability_hooks', True):
        return []
    hooks = list(cfg.get('custom_hooks', None) or [])
    present = {
        h.get('type') if isinstance(h, dict) else type(h).__name__
        for h in hooks
    }
    base = load_config(runtime_base()).custom_hooks
    added = [dict(h) for h in base if h['type'] not in present]
    if added:
        cfg.custom_hooks = hooks + added
        print_log(
            'custom_hooks of this config leave out '
            f'{", ".join(h["type"] for h in added)}; added back (set '
            'reliability_hooks = False in the config to run without them; '
            'docs/reliability.md)',
            logger='current')
    return [h['type'] for h in added]


def make_run_names_unique(cfg: Config) -> None:
    """Let MMEngine name the visualizer after the run (in place).

    The configs name their visualizer ``'visualizer'``; MMEngine returns an
    existing instance of that name, so a second runner in the same process
    (the demo trains, then tests) would write its scalars and images into
    the first run's folder. Without a fixed name MMEngine uses the run's
    unique experiment name.
    """
    vis = cfg.get('visualizer')
    if isinstance(vis, dict):
        vis.pop('name', None)
