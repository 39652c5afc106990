"""The official annotation file of each EPIC-KITCHENS-100 split, and which split a file
names: `EPIC_100_validation.pkl` holds the validation split's segments, whatever folder it
is in. Files under other names are the user's own (subsets, merges) and name no split."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from epic_ar.errors import EpicArError, Parameter

Split = Literal["train", "val", "test"]  # as commands spell them (--split val)

# The stem of each split's official annotation files (.csv and .pkl; the flow copies that
# convert-flow-idxs writes add "_flow").
OFFICIAL_STEMS: dict[Split, str] = {
    "train": "EPIC_100_train",
    "val": "EPIC_100_validation",
    "test": "EPIC_100_test_timestamps",
}


def split_named_by(path: Path) -> Split | None:
    """The split whose official annotations `path` is by its name: the name is an official
    stem, or starts with one followed by "." or "_" (`EPIC_100_train_flow.pkl`); None for
    any other name."""
    name = path.name
    for split, stem in OFFICIAL_STEMS.items():
        if name == stem or (name.startswith(stem) and name[len(stem)] in "._"):
            return split
    return None


def check_labels_split(labels: Path, split: Split) -> None:
    """Refuse `labels` when its name is the official annotation file of another split than
    `split` (the split they are to describe).

    Raises:
        EpicArError: naming `labels`, the split its name says and `split`.
    """
    named = split_named_by(labels)
    if named is None or named == split:
        return
    raise EpicArError(
        f"{labels}: by its name, the {named} split's annotations, not the {split} split's (",
        Parameter("split", f"split={split!r}", metavar=split),
        f"); give {OFFICIAL_STEMS[split]}.csv or .pkl",
    )
