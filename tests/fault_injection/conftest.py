"""Fixtures of the fault-injection suite (see harness.py)."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import FaultRunner  # noqa: E402


@pytest.fixture
def fault():
    """A :class:`harness.FaultRunner`."""
    return FaultRunner()


@pytest.fixture(scope='session')
def fault_fork():
    """A :class:`forked.ForkedRunner`: the tool runs in a fork of a server
    that imported torch and the plugin once (seconds saved per case)."""
    from forked import ForkedRunner
    runner = ForkedRunner()
    yield runner
    runner.close()
