"""Results files: layouts x serialisations round-trip; bad, corrupted and hostile files give
a one-line EpicArError naming the file and never run code."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import Results, load_results, save_results
from epic_ar.evaluation.serialization import load_data_file
from helpers.factories import make_results
from helpers.results_files import (
    SERIALISATIONS,
    as_list_layout,
    as_numpy1_pickle,
    hostile_results,
    write_object,
)

narration_ids = st.lists(
    st.from_regex(r"P[0-9]{2}_[0-9]{2,3}_[0-9]{1,4}", fullmatch=True),
    min_size=1,
    max_size=6,
    unique=True,
)


def assert_same(loaded: Results, expected: Results) -> None:
    np.testing.assert_array_equal(loaded.verb_output, expected.verb_output)
    np.testing.assert_array_equal(loaded.noun_output, expected.noun_output)
    assert loaded.narration_id.tolist() == expected.narration_id.tolist()
    assert loaded.verb_output.dtype == expected.verb_output.dtype


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=narration_ids,
    layout=st.sampled_from(["dict", "list"]),
    serialisation=st.sampled_from(SERIALISATIONS),
    suffix=st.sampled_from([".pt", ".pkl", ".results"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_every_layout_and_serialisation_round_trips(
    tmp_path: Path,
    ids: list[str],
    layout: str,
    serialisation: str,
    suffix: str,
    dtype: type,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    expected = Results(
        rng.standard_normal((len(ids), 97)).astype(dtype),
        rng.standard_normal((len(ids), 300)).astype(dtype),
        np.array(ids),
        {"video_id": np.array([i.rsplit("_", 1)[0] for i in ids])},
    )
    obj: Any = expected.to_dict() if layout == "dict" else as_list_layout(expected)
    path = write_object(obj, tmp_path / f"results{suffix}", serialisation)
    loaded = load_results(path)
    assert_same(loaded, expected)
    assert loaded.extra["video_id"].tolist() == expected.extra["video_id"].tolist()


def test_save_then_load_is_identical_and_torch_loads_it_too(tmp_path: Path) -> None:
    results = make_results(5)
    results.extra["start_frame"] = np.arange(5)
    path = tmp_path / "out.pt"
    save_results(results, path)
    assert_same(load_results(path), results)
    with torch.serialization.safe_globals([np.dtype]):
        raw = torch.load(path, weights_only=False)  # what users of the original tools do
    assert set(raw) == {"verb_output", "noun_output", "narration_id", "start_frame"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.pt"]  # no temp file left


def test_torch_tensors_are_read_through_torch_weights_only(tmp_path: Path) -> None:
    results = make_results(3)
    obj = {
        "verb_output": torch.from_numpy(results.verb_output),
        "noun_output": torch.from_numpy(results.noun_output),
        "narration_id": results.narration_id.tolist(),
    }
    loaded = load_results(write_object(obj, tmp_path / "t.pt", "torch_zip"))
    assert_same(loaded, results)


def test_extra_tensors_become_arrays_that_move_with_their_segments(tmp_path: Path) -> None:
    results = make_results(3)
    obj = {**results.to_dict(), "start_frame": torch.tensor([10, 20, 30])}
    loaded = load_results(write_object(obj, tmp_path / "t.pt", "torch_zip"))
    assert isinstance(loaded.extra["start_frame"], np.ndarray)
    assert loaded.take(np.array([2, 0])).extra["start_frame"].tolist() == [30, 10]


def test_numpy1_pickles_load(tmp_path: Path) -> None:
    results = make_results(3)
    path = tmp_path / "old.pkl"
    path.write_bytes(as_numpy1_pickle(as_list_layout(results)))
    assert b"numpy.core.multiarray" in path.read_bytes()
    assert_same(load_results(path), results)


@pytest.mark.parametrize("serialisation", SERIALISATIONS)
@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_hostile_files_are_refused_without_running_code(
    tmp_path: Path, serialisation: str, suffix: str
) -> None:
    target = tmp_path / "pwned"
    path = write_object(hostile_results(target), tmp_path / f"evil{suffix}", serialisation)
    with pytest.raises(EpicArError) as error:
        load_results(path)
    assert not target.exists()
    message = str(error.value)
    assert str(path) in message and re.search(r"'(io|builtins)\.open'", message)
    assert "\n" not in message


def test_hostile_numpy1_style_pickle_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(as_numpy1_pickle(hostile_results(target)))
    with pytest.raises(EpicArError, match=r"(io|builtins)\.open"):
        load_results(path)
    assert not target.exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("noun_output"), r"missing key\(s\) noun_output"),
        (lambda d: d.update(verb_output=np.zeros((4, 96))), r"verb_output has shape \[4, 96\]"),
        (lambda d: d.update(noun_output=np.zeros((3, 300))), "N differs"),
        (lambda d: d.update(narration_id=np.array(["a", "b", "a", "c"])), "appear more than once"),
        (lambda d: d["verb_output"].__setitem__((2, 5), np.nan), "non-finite.*row 2"),
        (lambda d: d["noun_output"].__setitem__((1, 0), np.inf), "non-finite.*P01_01_1"),
        (lambda d: d.update(narration_id=[1, 2, 3, 4]), r"narration_id\[0\] is a int"),
        (lambda d: d.update(verb_output=np.full((4, 97), "x")), "dtype"),
    ],
)
def test_invalid_contents_are_refused_naming_the_file(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    data = make_results(4).to_dict()
    mutate(data)
    path = write_object(data, tmp_path / "bad.pt", "torch_zip")
    with pytest.raises(EpicArError, match=message) as error:
        load_results(path)
    assert str(error.value).startswith(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"verb,noun\n1,2\n", "neither a torch file nor a valid pickle"),  # text, not labels
        (pickle.dumps([1, 2]), "item 0 is a int"),
        (pickle.dumps("text"), "holds a str"),
        (pickle.dumps([]), "empty list"),
        (b"PK\x03\x04garbage", "corrupted"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(EpicArError, match=message):
        load_results(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EpicArError, match="no such file"):
        load_data_file(tmp_path / "nope.pt")


# The test's own reader of plain pickles: Python's unpickler, admitting only the globals that
# numpy arrays need (so a corrupted name can never call anything else).
_ARRAY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes in protocols 0-2
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return super().find_class(module, name)


def what_the_bytes_say(data: bytes, serialisation: str) -> Any:
    """The object a pickle or legacy torch file now encodes (the legacy format: 3 header
    pickles, the object, then the storages)."""
    stream = io.BytesIO(data)
    for _ in range(3 if serialisation == "torch_legacy" else 0):
        _ArraysOnly(stream).load()
    return _ArraysOnly(stream).load()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    serialisation=st.sampled_from(SERIALISATIONS),
    cut=st.floats(0, 1, exclude_max=True),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=3),
)
def test_corrupted_files_load_exactly_or_fail_with_one_line(
    tmp_path: Path, serialisation: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    original = make_results(2)
    path = write_object(original.to_dict(), tmp_path / "r.pt", serialisation)
    data = bytearray(path.read_bytes())
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    corrupted = bytes(data[: max(1, int(len(data) * (1 - cut / 2)))] if cut else data)
    path.write_bytes(corrupted)
    try:
        loaded = load_results(path)
    except EpicArError as error:
        message = str(error)
        assert "\n" not in message and str(path) in message, message
        return
    if serialisation == "torch_zip":
        # Every zip member carries a CRC-32, checked as data.pkl is read: a load can only
        # succeed when the corruption missed what is read (file times, alignment padding,
        # the other members), and then nothing changed.
        assert_same(loaded, original)
        assert loaded.extra == original.extra == {}
        return
    # Pickles (and legacy torch files) carry no checksum: a flip inside array data or an id
    # is another valid file, which no reader can tell from the original. Then the load must
    # give exactly what the bytes now say, nothing more or less.
    try:
        expected = what_the_bytes_say(corrupted, serialisation)
    except pickle.UnpicklingError:
        # A flip in a protocol-4 frame's length: Python's C reader refuses a frame longer
        # than the data, the pure-Python reader (the safe loader's base) reads what there
        # is. A frame's length is framing, not content: the load must be the original.
        assert_same(loaded, original)
        assert loaded.extra == original.extra == {}
        return
    assert isinstance(expected, dict)
    assert np.array_equal(loaded.verb_output, expected["verb_output"])
    assert np.array_equal(loaded.noun_output, expected["noun_output"])
    assert loaded.narration_id.tolist() == np.asarray(expected["narration_id"]).tolist()
    assert set(loaded.extra) == set(expected) - {"verb_output", "noun_output", "narration_id"}


@pytest.mark.parametrize("name", ["corrupted_dtype_flags.pkl", "segfaulting_dtype_state.pkl"])
def test_corrupted_dtype_state_is_refused_quietly(name: str) -> None:
    # Found by fuzzing. The first file loaded, then crashed numpy when freed ("Exception
    # ignored ..." on stderr, which pytest turns into a failure); the second segfaulted
    # numpy's dtype.__setstate__ while loading.
    path = Path(__file__).parent / "data" / name
    with pytest.raises(EpicArError, match="corrupted or unsupported numpy dtype state"):
        load_results(path)
