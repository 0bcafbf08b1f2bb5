"""What every layer reads and writes: the project's plumbing.

* :mod:`.errors`: the errors a user can fix (one ``error:`` line each);
* :mod:`.files`: input/output checks and atomic writes (:mod:`.atomic`,
  also MMEngine's ``'atomic_local'`` file backend);
* :mod:`.checkpoint`: the one checkpoint reader (``weights_only=True``
  with an allow-list, a diagnosis of damaged files, SHA-256 logged:
  :mod:`.checksum`), and safe loaders for every scheme MMEngine knows
  (:mod:`.checkpoint_schemes`);
* :mod:`.state_dict`: tensors into a module, with a message that explains
  a file that does not fit;
* :mod:`.config`: the one config loader with the ``--cfg-options`` check;
* :mod:`.cpu`: what the CPU is (model, family, SIMD flags).

Nothing here imports another part of the package.
"""
