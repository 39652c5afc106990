"""EPIC-KITCHENS-100 label files and class tables."""

from epic_ar.annotations.classes import (
    N_NOUNS,
    N_VERBS,
    packaged_table,
    read_participant_ids,
    read_tail_classes,
)
from epic_ar.annotations.labels import read_annotations, require_columns

__all__ = [
    "N_NOUNS",
    "N_VERBS",
    "packaged_table",
    "read_annotations",
    "read_participant_ids",
    "read_tail_classes",
    "require_columns",
]
