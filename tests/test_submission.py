"""Submission zips: the official JSON, split coverage, supervision levels."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from epic_ar.errors import EpicArError
from epic_ar.evaluation.submission import (
    SupervisionLevels,
    _score_objects,
    check_split_coverage,
    submission_json,
    write_submission,
)
from helpers.factories import make_results
from helpers.official_reference import official_submission_text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_json_text_is_identical_to_the_official_tool(dtype: type) -> None:
    results = make_results(1030)  # more than two chunks of 512 segments
    results.verb_output = results.verb_output.astype(dtype) * 1e-3
    results.noun_output = results.noun_output.astype(dtype) * 1e5
    results.narration_id[2] = 'P01_01_"quoted"'
    text = submission_json(results, SupervisionLevels(pt=1, tl=0, td=5))
    assert text == official_submission_text(
        results.verb_output, results.noun_output, results.narration_id, sls=(1, 0, 5)
    )


def test_zip_holds_one_test_json(tmp_path: Path) -> None:
    results = make_results(3)
    path = tmp_path / "sub" / "submission.zip"
    write_submission(results, path, SupervisionLevels())
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["test.json"]
        content = json.loads(archive.read("test.json"))
    assert (content["sls_pt"], content["sls_tl"], content["sls_td"]) == (2, 3, 4)
    assert list(content["results"]) == results.narration_id.tolist()
    entry = content["results"]["P01_01_1"]
    assert list(entry["verb"]) == [str(i) for i in range(97)]
    assert entry["noun"]["299"] == float(results.noun_output[1, 299])
    with pytest.raises(EpicArError, match="already exists"):
        write_submission(results, path, SupervisionLevels())


@pytest.mark.parametrize("level", [-1, 6, 2.5])
def test_supervision_levels_are_0_to_5(level: int) -> None:
    with pytest.raises(EpicArError, match="sls_tl must be an integer 0-5"):
        SupervisionLevels(tl=level)


def test_split_coverage() -> None:
    results = make_results(4)
    check_split_coverage(results, results.narration_id[::-1].copy(), split_source="split.csv")
    split = np.array([*results.narration_id[:3].tolist(), "P09_09_9"])
    with pytest.raises(EpicArError) as error:
        check_split_coverage(results, split, split_source="split.csv")
    message = str(error.value)
    assert "1 of 4 segments missing (P09_09_9)" in message
    assert "1 narration ids not in the split (P01_01_3)" in message


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(1, 4), st.integers(1, 12)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
    )
)
def test_score_text_equals_json_dumps_for_any_finite_floats(scores: np.ndarray) -> None:
    # Covers the magnitudes where orjson and repr spell numbers differently (< 1e-4,
    # subnormals, -0.0, large exponents).
    expected = [json.dumps({str(c): float(s) for c, s in enumerate(row)}) for row in scores]
    assert _score_objects(scores) == expected
