"""convert-flow-idxs: RGB to flow frame numbers, by video year."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from epic_ar.annotations.flow_frames import to_flow_frame_numbers
from epic_ar.annotations.labels import read_annotations
from helpers.cli import RunCli
from helpers.factories import write_labels_csv

ROWS = [
    {
        "narration_id": "P01_01_0",
        "video_id": "P01_01",
        "start_frame": 1,
        "stop_frame": 10,
        "verb_class": 3,
    },
    {
        "narration_id": "P01_01_1",
        "video_id": "P01_01",
        "start_frame": 2,
        "stop_frame": 11,
        "verb_class": 3,
    },
    {
        "narration_id": "P01_101_0",
        "video_id": "P01_101",
        "start_frame": 7,
        "stop_frame": 9,
        "verb_class": 4,
    },
]


def test_stride_2_for_2018_videos_and_1_for_2020_videos() -> None:
    labels = pd.DataFrame(ROWS).set_index("narration_id")
    flow = to_flow_frame_numbers(labels)
    # 2018: (f - 1) // 2 + 1 -> 1->1, 10->5, 2->1, 11->6; 2020: unchanged
    assert flow["start_frame"].tolist() == [1, 1, 7]
    assert flow["stop_frame"].tolist() == [5, 6, 9]
    assert flow["verb_class"].tolist() == [3, 3, 4]  # other columns untouched
    assert labels["stop_frame"].tolist() == [10, 11, 9]  # input not modified


def test_real_validation_and_test_splits(official_annotations: Path) -> None:
    # validation holds 2018 videos only, test 2020 videos only
    labels = pd.concat(
        [
            read_annotations(official_annotations / "EPIC_100_validation.pkl")[
                ["video_id", "start_frame", "stop_frame"]
            ],
            read_annotations(official_annotations / "EPIC_100_test_timestamps.pkl")[
                ["video_id", "start_frame", "stop_frame"]
            ],
        ]
    )
    flow = to_flow_frame_numbers(labels)
    old = labels["video_id"].str.len() == 6  # P01_11: 2018
    assert old.any() and (~old).any()
    assert (flow.loc[old, "start_frame"] == (labels.loc[old, "start_frame"] - 1) // 2 + 1).all()
    assert (flow.loc[~old, "stop_frame"] == labels.loc[~old, "stop_frame"]).all()


@pytest.mark.parametrize(("source", "target"), [("csv", "pkl"), ("pkl", "csv"), ("csv", "csv")])
def test_cli_converts_between_csv_and_pickle(
    run_cli: RunCli, tmp_path: Path, source: str, target: str
) -> None:
    src = write_labels_csv(tmp_path / "in.csv", ROWS)
    if source == "pkl":
        pd.read_csv(src).set_index("narration_id").to_pickle(tmp_path / "in.pkl")
        src = tmp_path / "in.pkl"
    out = tmp_path / f"out.{target}"
    done = run_cli("convert-flow-idxs", src, out)
    assert done.returncode == 0, done.stderr
    converted = read_annotations(out)
    assert converted.index.tolist() == ["P01_01_0", "P01_01_1", "P01_101_0"]
    assert converted["stop_frame"].tolist() == [5, 6, 9]
    assert run_cli("convert-flow-idxs", src, out).returncode == 1  # exists, no --force
    done = run_cli("convert-flow-idxs", src, tmp_path / "out.txt")
    assert done.returncode == 1 and "must end in .csv or .pkl" in done.stderr


def test_a_text_column_named_like_a_frame_number_is_refused(
    run_cli: RunCli, tmp_path: Path
) -> None:
    src = write_labels_csv(tmp_path / "in.csv", ROWS)
    table = pd.read_csv(src)
    table["key_frame"] = "middle"
    table.to_csv(src, index=False)
    done = run_cli("convert-flow-idxs", src, tmp_path / "out.csv")
    assert done.returncode == 1 and not (tmp_path / "out.csv").exists()
    assert done.stderr.strip() == (
        f"epic-ar convert-flow-idxs: error: {src}: column 'key_frame' is named like a frame "
        "number but holds 'middle', not whole numbers; rename it or make it whole numbers"
    )
    table["key_frame"] = table["start_frame"] + 1  # whole numbers are converted too
    table.to_csv(src, index=False)
    assert run_cli("convert-flow-idxs", src, tmp_path / "out.csv").returncode == 0
    converted = read_annotations(tmp_path / "out.csv")
    assert converted["key_frame"].tolist() == [
        (s + 1 - 1) // (2 if v == "P01_01" else 1) + 1
        for s, v in zip(table["start_frame"], table["video_id"], strict=True)
    ]
