"""`epic-ar evaluate ... --report DIR`: the figures' numbers, the page, the test split."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from epic_ar.evaluation.results import save_results
from epic_ar.synthetic.results import synthetic_results
from epic_ar.visualize import report_plots
from helpers.cli import RunCli

LABELLED_FIGURES = {
    "verb_accuracy.png",
    "noun_accuracy.png",
    "verb_confusion.png",
    "participant_accuracy.png",
}


def test_confusion_rows_sum_to_one_with_an_other_column(tmp_path: Path) -> None:
    labels = np.array([1, 1, 1, 2, 2, 5])
    guesses = np.array([1, 2, 7, 2, 2, 5])
    matrix = report_plots.confusion_matrix(
        guesses, labels, [1, 2], kind="verb", path=tmp_path / "c.png"
    )
    assert np.allclose(matrix, np.array([[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]))
    assert Image.open(tmp_path / "c.png").format == "PNG"


def test_per_class_and_per_participant_values(tmp_path: Path) -> None:
    labels = np.array([3, 3, 3, 0, 0, 8])
    guesses = np.array([3, 3, 0, 0, 1, 8])
    shown = report_plots.per_class_accuracy(
        guesses, labels, kind="noun", tail=np.array([8]), limit=2, path=tmp_path / "n.png"
    )
    assert shown == [3, 0]  # most frequent first, the limit applied
    people = np.array(["P01", "P01", "P02", "P02", "P02", "P02"])
    values = report_plots.per_participant_accuracy(
        {"noun": guesses == labels}, people, unseen=np.array(["P02"]), path=tmp_path / "p.png"
    )
    assert values == {"P01": {"noun": 100.0}, "P02": {"noun": 50.0}}


def image_sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_on_the_validation_labels(
    run_cli: RunCli, tmp_path: Path, validation_labels_csv: Path
) -> None:
    labels = pd.read_csv(validation_labels_csv, index_col="narration_id")
    save_results(synthetic_results(labels, signal=2.0, seed=1), tmp_path / "r.pt")
    report = tmp_path / "report"
    done = run_cli(
        "evaluate", tmp_path / "r.pt", validation_labels_csv, "--format", "json",
        "--report", report,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)  # stdout still holds only the metrics
    page = (report / "index.html").read_text()
    assert set(image_sources(page)) == LABELLED_FIGURES
    for name in LABELLED_FIGURES:
        with Image.open(report / name) as image:
            assert image.format == "PNG" and min(image.size) >= 300
    for name, value in metrics.items():
        assert f"<th>{name}</th><td>{value:.2f}</td>" in page
    assert str(validation_labels_csv.resolve()) in page and "9668" in page
    assert "report: " in done.stderr


def test_test_split_gets_label_free_views(
    run_cli: RunCli, tmp_path: Path, validation_labels_csv: Path
) -> None:
    labels = pd.read_csv(validation_labels_csv, index_col="narration_id").iloc[:500]
    unlabelled = labels.drop(columns=["verb", "verb_class", "noun", "noun_class"])
    test_labels = tmp_path / "EPIC_100_test_timestamps.csv"
    unlabelled.to_csv(test_labels)
    save_results(synthetic_results(unlabelled, signal=2.0, seed=1), tmp_path / "t.pt")
    done = run_cli("evaluate", tmp_path / "t.pt", test_labels, "--report", tmp_path / "rep")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "label-free report only" in done.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "only label-free views are possible" in page
    figures = image_sources(page)
    assert figures == ["predicted_verbs.png", "predicted_nouns.png", "confidence.png"]
    assert all((tmp_path / "rep" / name).is_file() for name in figures)
    without_report = run_cli("evaluate", tmp_path / "t.pt", test_labels)
    assert without_report.returncode == 1 and "epic-ar submit" in without_report.stderr


def test_partial_results_warn_once_with_a_report(
    run_cli: RunCli, tmp_path: Path, validation_labels_csv: Path
) -> None:
    labels = pd.read_csv(validation_labels_csv, index_col="narration_id")
    save_results(synthetic_results(labels.iloc[:300], signal=2.0, seed=1), tmp_path / "r.pt")
    done = run_cli(
        "evaluate", tmp_path / "r.pt", validation_labels_csv, "--report", tmp_path / "rep"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("results cover 300 of 9668 segments") == 1
    assert "<th>segments</th><td>300</td>" in (tmp_path / "rep" / "index.html").read_text()
