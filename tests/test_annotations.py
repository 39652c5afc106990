"""Annotation files (CSV and pandas pickles, read safely) and the packaged tables."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epic_ar.annotations import (
    N_NOUNS,
    N_VERBS,
    packaged_table,
    read_annotations,
    read_participant_ids,
    read_tail_classes,
)
from epic_ar.annotations.classes import PACKAGED_TABLES
from epic_ar.errors import EpicArError
from helpers.factories import write_labels_csv
from helpers.repository import OFFICIAL_SHA256, sha256_of
from helpers.results_files import CreatesFile

KEY_COLUMNS = [
    "participant_id",
    "video_id",
    "start_frame",
    "stop_frame",
    "verb_class",
    "noun_class",
]


def test_real_validation_csv_and_pickle_agree(official_annotations: Path) -> None:
    from_csv = read_annotations(official_annotations / "EPIC_100_validation.csv")
    from_pkl = read_annotations(official_annotations / "EPIC_100_validation.pkl")
    assert len(from_csv) == len(from_pkl) == 9668
    assert from_csv.index.tolist() == from_pkl.index.tolist()
    for column in KEY_COLUMNS:
        assert from_csv[column].tolist() == from_pkl[column].tolist(), column


def test_real_test_timestamps_pickle_reads(official_annotations: Path) -> None:
    labels = read_annotations(official_annotations / "EPIC_100_test_timestamps.pkl")
    assert len(labels) == 13092
    assert "verb_class" not in labels.columns


def test_pickle_written_by_current_pandas_reads(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "narration_id": ["P01_01_0", "P01_01_1"],
            "participant_id": ["P01", "P01"],
            "verb_class": [3, 4],
            "noun_class": [10, 299],
        }
    ).set_index("narration_id")
    path = tmp_path / "labels.pkl"
    frame.to_pickle(path)
    read = read_annotations(path, required_columns=["verb_class", "noun_class"])
    assert read["noun_class"].tolist() == [10, 299]


def test_hostile_annotation_pickle_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "EPIC_100_validation.pkl"
    path.write_bytes(pickle.dumps({"narration_id": CreatesFile(target)}, protocol=2))
    with pytest.raises(EpicArError, match=r"refused to load '(io|builtins)\.open'"):
        read_annotations(path)
    assert not target.exists()


def test_csv_problems_name_the_file(tmp_path: Path) -> None:
    no_id = write_labels_csv(tmp_path / "a.csv", [{"verb_class": 1}])
    with pytest.raises(EpicArError, match="no 'narration_id'"):
        read_annotations(no_id)
    repeated = write_labels_csv(
        tmp_path / "b.csv", [{"narration_id": "P01_01_0"}, {"narration_id": "P01_01_0"}]
    )
    with pytest.raises(EpicArError, match="P01_01_0' appears more than once"):
        read_annotations(repeated)
    one = write_labels_csv(tmp_path / "c.csv", [{"narration_id": "x", "verb_class": 1}])
    with pytest.raises(EpicArError, match=r"c\.csv: missing column\(s\) 'noun_class'"):
        read_annotations(one, required_columns=["verb_class", "noun_class"])
    with pytest.raises(EpicArError, match="no such file"):
        read_annotations(tmp_path / "missing.csv")


def test_packaged_tables_are_the_official_ones() -> None:
    for name in PACKAGED_TABLES:
        assert packaged_table(name).is_file(), name
    verbs = pd.read_csv(packaged_table("EPIC_100_verb_classes.csv"))
    nouns = pd.read_csv(packaged_table("EPIC_100_noun_classes.csv"))
    assert verbs["id"].tolist() == list(range(N_VERBS))
    assert nouns["id"].tolist() == list(range(N_NOUNS))
    assert verbs["key"][0] == "take" and nouns["key"][0] == "tap"
    tail_verbs = read_tail_classes(packaged_table("EPIC_100_tail_verbs.csv"), "verb")
    tail_nouns = read_tail_classes(packaged_table("EPIC_100_tail_nouns.csv"), "noun")
    assert len(tail_verbs) == 86 and len(tail_nouns) == 228
    assert tail_verbs.dtype == np.int64 and tail_verbs.min() >= 0 and tail_verbs.max() < N_VERBS
    unseen = packaged_table("EPIC_100_unseen_participant_ids_validation.csv")
    assert read_participant_ids(unseen).tolist() == ["P18", "P32"]


def test_packaged_tables_are_the_published_bytes() -> None:
    for name in PACKAGED_TABLES:
        assert sha256_of(packaged_table(name)) == OFFICIAL_SHA256[name], name


def test_unknown_packaged_table() -> None:
    with pytest.raises(EpicArError, match="no packaged table"):
        packaged_table("EPIC_100_train.csv")


@pytest.mark.parametrize("column", ["participant_id", "video_id"])
def test_an_empty_identifier_is_refused(tmp_path: Path, column: str) -> None:
    from epic_ar.annotations.labels import read_annotations

    path = tmp_path / "labels.csv"
    path.write_text(
        "narration_id,participant_id,video_id,start_frame,stop_frame\n"
        "P01_01_0,P01,P01_01,1,10\n"
        f"P01_01_1,{'' if column == 'participant_id' else 'P01'},"
        f"{'' if column == 'video_id' else 'P01_01'},11,20\n"
    )
    with pytest.raises(EpicArError) as caught:
        read_annotations(path)
    assert str(caught.value) == f"{path}: segment P01_01_1: {column} is empty"
