"""Helpers shared by the tests, imported as ``from helpers.<topic> import
...`` (``tests/`` is on pytest's ``pythonpath``, see ``pytest.ini``):

* :mod:`.models`: the repository root, official configs and key list,
  random states, config-built models, official-format checkpoints;
* :mod:`.configs`: the shipped configs and generated data in the layout
  each reads;
* :mod:`.tools`: running a tool (in-process or as a subprocess), a
  stand-in ``srun``/``scontrol``;
* :mod:`.train`: small schedules and a MiT-B0 teacher for tool runs;
* :mod:`.siam`: the configs of configs/siam, batches with edge maps,
  teacher checkpoints as MMSegmentation writes them, a float64 CWD;
* :mod:`.reliability`: tiny training configs, runs of them to the end, loss
  logs, a toy runner;
* :mod:`.deploy`: a small trained-looking deployment setup;
* :mod:`.reference_sctnet`: the independent functional SCTNet.

``conftest.py`` holds the fixtures; the fault-injection suite's harness is
``fault_injection/harness.py``.
"""
