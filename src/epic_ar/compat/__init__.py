"""Reading what older versions of other tools wrote, and nothing else.

Everything here exists only because of files made by older software: the published
EPIC-KITCHENS checkpoints (PyTorch Lightning 0.9, their config pickled by OmegaConf 2.0)
and the official annotation pickles (older pandas).

- `omegaconf_pickles`: stand-ins for the pickled OmegaConf 2.0 classes (so that nothing a
  checkpoint names is imported) and `plain_config`, which rebuilds the config as dicts.
- `lightning_config`: a stored run config in today's schema (`current_config`): `${...}`
  interpolations resolved, Lightning 0.9 / 1.x trainer keys translated.
- `pandas_pickles`: the allow-list and unpickler for DataFrames pickled by any pandas
  version (`read_pandas_pickle`).

Layering: compat imports only `epic_ar.errors`, `epic_ar.fileio` and third-party packages;
the layers above use it.
"""
