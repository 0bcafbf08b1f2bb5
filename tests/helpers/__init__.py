"""Helpers shared by the tests, imported as ``from helpers.<topic> import
...`` (``tests/`` is on pytest's ``pythonpath``, see ``pytest.ini``):

* :mod:`.models`: the repository root, official configs and key list,
  random states, config-built models, official-format checkpoints;
* :mod:`.configs`: the shipped configs and generated data in the layout
  each reads;
* :mod:`.tools`: running a tool (in-process or as a subprocess);
* :mod:`.train`: small schedules and a MiT-B0 teacher for tool runs;
* :mod:`.reliability`: tiny training configs, loss logs, a toy runner;
* :mod:`.deploy`: a small trained-looking deployment setup;
* :mod:`.reference_sctnet`: the independent functional SCTNet.

``conftest.py`` holds the fixtures; the fault-injection suite's harness is
``fault_injection/harness.py``.
"""
