"""How `predict` shows probabilities to people: digits that carry information however small
an action's p (a product of two softmaxes), while the JSON and CSV files keep full values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epic_ar.prediction.outputs import format_p, table_lines, write_predictions
from epic_ar.prediction.result import ActionScore, ClassScore, VideoPrediction, WindowPrediction
from epic_ar.visualize.annotated_video import window_lines


@pytest.mark.parametrize(
    ("p", "decimals", "shown"),
    [
        (0.207, 3, "0.207"),
        (0.0384, 3, "0.038"),
        (1.0, 3, "1.000"),
        (0.001, 3, "0.001"),
        (0.000999, 3, "1.0e-03"),
        (4.2e-05, 3, "4.2e-05"),
        (3.14159e-09, 3, "3.1e-09"),
        (0.0, 3, "0"),
        (0.62, 2, "0.62"),
        (0.01, 2, "0.01"),
        (0.0043, 2, "4.3e-03"),
    ],
)
def test_probabilities_by_hand(p: float, decimals: int, shown: str) -> None:
    assert format_p(p, decimals) == shown


@given(st.floats(min_value=5e-324, max_value=1.0))
def test_a_positive_p_never_shows_as_zero_and_reads_back_close(p: float) -> None:
    shown = format_p(p)
    value = float(shown)
    assert value > 0
    if p >= 0.001:  # three decimals: off by half the last one at most
        assert abs(value - p) <= 0.0005 + 1e-12
        assert len(shown.split(".")[1]) == 3
    else:  # two significant digits: off by 5% at most
        assert abs(value - p) <= 0.05 * p * (1 + 1e-9)
        assert "e-" in shown


WEAK = VideoPrediction(
    video="v.mp4",
    fps=50.0,
    frames=100,
    model="m.ckpt",
    window=1.0,
    stride=1.0,
    windows=[
        WindowPrediction(
            0.0,
            1.0,
            [ClassScore(3, "open", 0.01123)],
            [ClassScore(7, "tap", 0.002861)],
            [ActionScore(3, 7, "open tap", 3.2129e-05)],
        ),
        WindowPrediction(
            1.0,
            2.0,
            [ClassScore(1, "put", 0.5)],
            [ClassScore(2, "cup", 0.25)],
            [ActionScore(1, 2, "put cup", 0.125)],
        ),
    ],
)


def test_the_table_shows_tiny_action_p_in_scientific_notation() -> None:
    header, *rows = table_lines(WEAK)
    assert header.split() == ["start", "end", "action", "p", "verb", "p", "noun", "p"]
    assert [row.split() for row in rows] == [
        ["0.00", "1.00", "open", "tap", "3.2e-05", "open", "0.011", "tap", "0.003"],
        ["1.00", "2.00", "put", "cup", "0.125", "put", "0.500", "cup", "0.250"],
    ]
    # right-aligned: the numbers of a column end at the same place
    assert len({len(row) for row in rows}) == 1


def test_the_annotated_video_text_shows_tiny_action_p() -> None:
    assert window_lines(WEAK.windows[0]) == ["0-1 s", "1. open tap  3.2e-05"]


def test_the_files_keep_the_full_values(tmp_path: Path) -> None:
    document = json.loads(write_predictions(WEAK, tmp_path / "p.json").read_text())
    assert document["windows"][0]["actions"] == [[3, 7, "open tap", 3.2129e-05]]
    assert document["windows"][0]["nouns"] == [[7, "tap", 0.002861]]
    with write_predictions(WEAK, tmp_path / "p.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert float(rows[0]["action_p"]) == 3.2129e-05
    assert float(rows[0]["verb_p"]) == 0.01123
