"""Fusion: alignment by narration id, mismatch errors, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from epic_ar.errors import EpicArError
from epic_ar.evaluation.fusion import fuse_results
from epic_ar.evaluation.results import load_results, save_results
from helpers.factories import make_results


def test_inputs_in_different_orders_are_aligned_by_narration_id() -> None:
    a = make_results(6, seed=1)
    a.extra["video_id"] = np.array(["P01_01"] * 6)
    b = make_results(6, seed=2)
    shuffled = b.take(np.array([3, 0, 5, 1, 4, 2]))
    fused = fuse_results([a, shuffled], names=["a", "b"])
    assert fused.narration_id.tolist() == a.narration_id.tolist()
    np.testing.assert_array_equal(
        fused.verb_output, np.stack([a.verb_output, b.verb_output]).mean(axis=0)
    )
    np.testing.assert_array_equal(
        fused.noun_output, np.stack([a.noun_output, b.noun_output]).mean(axis=0)
    )
    assert fused.verb_output.dtype == np.float32
    assert fused.extra["video_id"].tolist() == ["P01_01"] * 6


def test_weighted_mean() -> None:
    a, b = make_results(3, seed=1), make_results(3, seed=2)
    fused = fuse_results([a, b], names=["a", "b"], weights=[3.0, 1.0])
    expected = (3 * a.verb_output.astype(np.float64) + b.verb_output) / 4
    np.testing.assert_allclose(fused.verb_output, expected, rtol=1e-6)
    only_a = fuse_results([a, b], names=["a", "b"], weights=[1.0, 0.0])
    np.testing.assert_array_equal(only_a.noun_output, a.noun_output)


def test_three_inputs_plain_mean() -> None:
    parts = [make_results(4, seed=s) for s in range(3)]
    fused = fuse_results(parts, names=["a", "b", "c"])
    np.testing.assert_allclose(
        fused.verb_output, sum(p.verb_output.astype(np.float64) for p in parts) / 3, atol=1e-6
    )


def test_different_id_sets_are_refused_with_counts_and_examples() -> None:
    a = make_results(10)
    b = make_results(8).take(np.arange(8))
    b.narration_id[0] = "P99_99_0"
    with pytest.raises(EpicArError) as error:
        fuse_results([a, b], names=["rgb.pt", "flow.pt"])
    message = str(error.value)
    assert "rgb.pt has 10, flow.pt has 8" in message
    assert "3 missing from flow.pt (P01_01_0, P01_01_8, P01_01_9)" in message
    assert "1 missing from rgb.pt (P99_99_0)" in message


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "1 weights for 2"),
        ([1.0, -1.0], ">= 0"),
        ([0.0, 0.0], "not all 0"),
        ([float("nan"), 1.0], "finite"),
    ],
)
def test_bad_weights(weights: list[float], message: str) -> None:
    with pytest.raises(EpicArError, match=message):
        fuse_results([make_results(2), make_results(2)], names=["a", "b"], weights=weights)


def test_provenance_lists_every_input_record_and_the_weights() -> None:
    a, b = make_results(3, seed=1), make_results(3, seed=2)
    a.extra["provenance"] = {
        "made_by": "epic-ar test",
        "checkpoint": "/c/rgb.ckpt",
        "frame_count": 8,
    }
    fused = fuse_results([a, b], names=["rgb.pt", "flow.pt"], weights=[2.0, 1.0])
    record = fused.extra["provenance"]
    assert record["made_by"].endswith(" fuse") and record["weights"] == [2.0, 1.0]
    assert record["inputs"] == [
        {"file": "rgb.pt", "provenance": a.extra["provenance"]},
        {"file": "flow.pt", "provenance": None},
    ]
    # fusing fused results nests the records
    again = fuse_results([fused, b], names=["fused.pt", "flow.pt"])
    assert again.extra["provenance"]["inputs"][0]["provenance"] == record
    assert again.extra["provenance"]["weights"] is None


def test_a_single_input_is_refused() -> None:
    with pytest.raises(EpicArError, match="two or more results files; got 1"):
        fuse_results([make_results(2)], names=["a"])


@pytest.mark.parametrize(
    ("count", "weights", "message"),
    [
        (1, [], "give two or more RESULTS files, then OUT"),
        (2, ["--weights", "1"], "--weights: got 1 weights for 2 RESULTS files"),
    ],
)
def test_fuse_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    count: int,
    weights: list[str],
    message: str,
) -> None:
    from epic_ar.cli.main import main

    inputs = []
    for index in range(count):
        inputs.append(str(tmp_path / f"r{index}.pt"))
        save_results(make_results(2), Path(inputs[-1]))
    with pytest.raises(SystemExit) as exit_info:
        main(["fuse", *inputs, str(tmp_path / "out.pt"), *weights])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"epic-ar fuse: error: {message}"
    assert not (tmp_path / "out.pt").exists()


def test_fused_file_keeps_the_records_through_save_and_load(tmp_path: Path) -> None:
    a, b = make_results(3, seed=1), make_results(3, seed=2)
    a.extra["provenance"] = {"made_by": "epic-ar test", "frame_count": 25, "trn_eval": None}
    save_results(fuse_results([a, b], names=["a", "b"]), tmp_path / "f.pt")
    loaded = load_results(tmp_path / "f.pt").extra["provenance"]
    assert loaded["inputs"][0]["provenance"] == a.extra["provenance"]
