"""Class counts, the action id rule, and the small official tables shipped with the package.

The tables in `tables/` are copies of files from the EPIC-KITCHENS-100 annotations
(CC BY-NC 4.0, see `tables/license.txt`).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from epic_ar.errors import EpicArError

if TYPE_CHECKING:
    import torch

N_VERBS = 97
N_NOUNS = 300
# The official action id of a (verb, noun) pair is `verb * 1000 + noun`; an action's
# candidates are the pairs of the 100 highest-scoring verbs and nouns.
ACTION_VERB_MULTIPLIER = 1000
ACTION_TOP_N = 100

# numpy arrays (evaluation) or torch tensors (training metrics)
ClassIds = TypeVar("ClassIds", "np.ndarray", "torch.Tensor")

PACKAGED_TABLES = (
    "EPIC_100_verb_classes.csv",
    "EPIC_100_noun_classes.csv",
    "EPIC_100_tail_verbs.csv",
    "EPIC_100_tail_nouns.csv",
    "EPIC_100_unseen_participant_ids_validation.csv",
    "EPIC_100_unseen_participant_ids_test.csv",
)


def action_ids(verb_classes: ClassIds, noun_classes: ClassIds) -> ClassIds:
    """Official action ids of (verb, noun) class pairs: `verb * 1000 + noun`.

    Both int arrays (or tensors) of one shape, or shapes that broadcast; the result has the
    broadcast shape.
    """
    ids: ClassIds = verb_classes * ACTION_VERB_MULTIPLIER + noun_classes
    return ids


def packaged_table(name: str) -> Path:
    """Path of one of the official tables shipped inside the package (`PACKAGED_TABLES`)."""
    if name not in PACKAGED_TABLES:
        raise EpicArError(f"no packaged table {name!r}; available: {', '.join(PACKAGED_TABLES)}")
    return Path(str(resources.files("epic_ar.annotations") / "tables" / name))


def _read_column(path: Path, column: str) -> pd.Series:
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise EpicArError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EpicArError(f"{path}: not a readable CSV file ({exc})") from exc
    if column not in table.columns:
        found = ", ".join(map(str, table.columns)) or "none"
        raise EpicArError(f"{path}: missing column '{column}' (columns: {found})")
    return table[column]


def read_tail_classes(path: Path, column: str) -> np.ndarray:
    """Class ids of a tail table (`EPIC_100_tail_verbs.csv`: column `verb`; nouns: `noun`).

    Returns:
        [K] int64 class ids.
    """
    values = _read_column(path, column)
    if not pd.api.types.is_integer_dtype(values):
        raise EpicArError(f"{path}: column '{column}' must hold integer class ids")
    return values.to_numpy(dtype=np.int64)


def read_participant_ids(path: Path) -> np.ndarray:
    """Participant ids (e.g. `P18`) of an `EPIC_100_unseen_participant_ids_*.csv` table.

    Returns:
        [K] array of str.
    """
    return _read_column(path, "participant_id").astype(str).to_numpy()


@functools.cache
def class_names(kind: str) -> dict[int, str]:
    """Class id → name (the `key` column) of the official verb or noun table shipped with
    epic-ar (`kind`: "verb" or "noun")."""
    table = pd.read_csv(packaged_table(f"EPIC_100_{kind}_classes.csv"))
    return dict(zip(table["id"].astype(int), table["key"].astype(str), strict=True))
