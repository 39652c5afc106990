"""Feature writers: what RULSTM's and ActionFormer's loaders read back, resuming, and
settings that do not match (SIGKILL and two processes: test_features_writers_kill.py).

The readers are written as the downstream projects read (RULSTM's `dataset.py`:
`lmdb.open(readonly=True, lock=False)`, `get`, `np.frombuffer(v, "float32")`;
ActionFormer: `np.load(f)["feats"]`), with keys spelled out, not built by the writers."""

from __future__ import annotations

from pathlib import Path

import lmdb
import numpy as np
import pytest

from epic_ar.errors import EpicArError
from epic_ar.features.writers import FeatureFormat, open_writer
from helpers.feature_writers import (
    ACTIONFORMER,
    RULSTM,
    SEGMENTS,
    SETTINGS,
    commit_one,
    features,
    frame_keys,
    output_of,
    read_npz,
    read_rulstm,
)


def test_rulstm_reader_finds_every_key_with_its_values(tmp_path: Path) -> None:
    out = tmp_path / "rgb"
    videos = {"P01_01": features(1, 7), "P01_101": features(2, 3)}
    writer = open_writer("rulstm-lmdb", out, RULSTM)
    for video, rows in videos.items():
        writer.commit(video, rows)  # float64: stored as float32
    writer.finish()
    assert sorted(p.name for p in out.iterdir()) == ["data.mdb", "lock.mdb"]
    env = lmdb.open(str(out), readonly=True, lock=False)
    txn = env.begin()
    for video, rows in videos.items():
        for n in range(1, len(rows) + 1):
            value = txn.get(f"{video}_frame_{n:010d}.jpg".encode())
            assert value is not None
            vector = np.frombuffer(value, "float32")
            assert vector.shape == (16,)
            np.testing.assert_array_equal(vector, rows[n - 1].astype(np.float32))
        assert txn.get(f"{video}_frame_{0:010d}.jpg".encode()) is None
        assert txn.get(f"{video}_frame_{len(rows) + 1:010d}.jpg".encode()) is None
    env.close()
    contents = read_rulstm(out)
    assert len(frame_keys(contents, "P01_01")) == 7
    assert len(frame_keys(contents, "P01_101")) == 3
    assert writer.summary() == f"{out}: 10 keys of 16 float32 values for 2 videos (LMDB for RULSTM)"


def test_rulstm_map_grows_from_one_mebibyte(tmp_path: Path) -> None:
    out = tmp_path / "big"
    rows = np.random.default_rng(0).random((3000, 2048), dtype=np.float32)
    writer = open_writer("rulstm-lmdb", out, RULSTM, initial_map_size=1 << 20)
    for k in range(3):
        writer.commit(f"P02_0{k}", rows + k)
    writer.finish()
    env = lmdb.open(str(out), readonly=True, lock=False)
    assert env.info()["map_size"] >= 3 * rows.nbytes
    env.close()
    contents = read_rulstm(out)
    for k in range(3):
        keys = frame_keys(contents, f"P02_0{k}")
        assert len(keys) == 3000
        stored = np.stack([np.frombuffer(contents[key], "float32") for key in keys])
        np.testing.assert_array_equal(stored, rows + k)


def test_actionformer_loader_reads_feats_and_settings(tmp_path: Path) -> None:
    out = tmp_path / "af"
    rows = features(3, 5, channels=8).astype(np.float16)
    writer = open_writer("actionformer", out, ACTIONFORMER)
    writer.commit("P03_04", rows)
    writer.finish()
    with (out / "P03_04.npz").open("rb") as stream:
        feats = np.load(stream)["feats"]
    assert feats.dtype == np.float32
    np.testing.assert_array_equal(feats, rows.astype(np.float32))
    data = read_npz(out / "P03_04.npz")
    assert data["feat_stride"].shape == ()
    assert (int(data["feat_stride"]), int(data["num_frames"])) == (16, 32)
    assert float(data["default_fps"]) == 30.0
    assert str(data["model"]) == "tsm"
    assert str(data["sizes"]) == "[224, 256]"  # not a plain value: JSON text
    assert writer.summary().startswith(f"{out}: 5 features of 8 float32 values in 1 .npz file")


def test_actionformer_leaves_other_files_alone(tmp_path: Path) -> None:
    out = tmp_path / "af"
    out.mkdir()
    np.savez(out / "P01_01.npz", feats=np.ones((2, 2), np.float32))  # someone else's file
    (out / "notes.txt").write_text("mine")
    writer = open_writer("actionformer", out, ACTIONFORMER)
    with pytest.raises(EpicArError, match=r"P01_01\.npz: exists and was not written by epic-ar"):
        writer.commit("P01_01", features(0, 2))
    writer.commit("P01_02", features(0, 2))
    open_writer("actionformer", out, {**ACTIONFORMER, "model": "tsn"}, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["P01_01.npz", "notes.txt"]
    np.testing.assert_array_equal(read_npz(out / "P01_01.npz")["feats"], np.ones((2, 2)))


def test_segments_merged_in_the_given_order(tmp_path: Path) -> None:
    out = tmp_path / "seg.npz"
    parts = tmp_path / "seg.npz.parts"
    first, second = features(4, 2), features(5, 3)
    writer = open_writer("segments", out, SEGMENTS)
    writer.commit("P01_02", second, ["P01_02_0", "P01_02_1", "P01_02_2"])
    writer.commit("P01_01", first, ["P01_01_0", "P01_01_1"])
    assert parts.is_dir() and not out.exists()
    order = ["P01_02_1", "P01_01_1", "P01_02_0", "P01_01_0", "P01_02_2"]
    with pytest.raises(EpicArError) as missing:
        writer.finish([*order, "P01_03_0", "P01_04_0"])
    assert str(missing.value) == (
        f"{out}: no feature for narration id P01_03_0 (its video was not committed); "
        "run again to compute it"
    )
    assert not out.exists() and parts.is_dir()
    writer.finish(order)
    assert not parts.exists()
    data = read_npz(out)
    assert data["narration_id"].dtype.kind == "U"
    assert data["narration_id"].tolist() == order
    assert data["features"].dtype == np.float32
    expected = np.stack([second[1], first[1], second[0], first[0], second[2]])
    np.testing.assert_array_equal(data["features"], expected.astype(np.float32))
    assert int(data["frame_count"]) == 8
    assert writer.summary() == f"{out}: 5 segments, 16 float32 values each (narration_id, features)"
    again = open_writer("segments", out, SEGMENTS)  # finished, the same settings: nothing to do
    assert again.finished("P99_99") and again.summary() == writer.summary()
    again.finish(order)
    assert not (tmp_path / "seg.npz.parts").exists()
    np.testing.assert_array_equal(read_npz(out)["features"], expected.astype(np.float32))
    with pytest.raises(EpicArError, match="was written with frame_count=8, not frame_count=4"):
        open_writer("segments", out, {**SEGMENTS, "frame_count": 4})
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(EpicArError, match="already exists; pass force=True to overwrite it"):
        open_writer("segments", other, SEGMENTS)


def test_actionformer_force_leaves_segments_files_and_lmdb_folders_alone(tmp_path: Path) -> None:
    out = tmp_path / "af"
    segments = open_writer("segments", out / "val.npz", SEGMENTS)
    segments.commit("P01_01", features(2, 1), ["a"])
    segments.finish(["a"])
    writer = open_writer("actionformer", out, ACTIONFORMER, force=True)
    writer.commit("P01_01", features(3, 2))
    assert sorted(p.name for p in out.iterdir()) == ["P01_01.npz", "val.npz"]
    commit_one("rulstm-lmdb", tmp_path / "db", "P01_01", features(3, 2))
    with pytest.raises(EpicArError, match="holds an LMDB database"):
        open_writer("actionformer", tmp_path / "db", ACTIONFORMER)


def test_segments_resume_over_a_finished_output_started_with_force(tmp_path: Path) -> None:
    out = tmp_path / "seg.npz"
    writer = open_writer("segments", out, SEGMENTS)
    writer.commit("P01_01", features(4, 1), ["a"])
    writer.finish(["a"])
    writer = open_writer("segments", out, SEGMENTS, force=True)
    writer.commit("P01_01", features(6, 1), ["a"])
    writer.close()  # killed before finishing: the parts say a run is under way
    writer = open_writer("segments", out, SEGMENTS)
    assert writer.finished("P01_01")
    writer.finish(["a"])
    np.testing.assert_array_equal(read_npz(out)["features"], features(6, 1).astype(np.float32))


@pytest.mark.parametrize("fmt", ["rulstm-lmdb", "actionformer", "segments"])
def test_resume_refuse_other_settings_and_force(fmt: FeatureFormat, tmp_path: Path) -> None:
    out = output_of(fmt, tmp_path)
    settings = SETTINGS[fmt]
    commit_one(fmt, out, "P01_01", features(7, 4))
    writer = open_writer(fmt, out, settings)
    assert writer.finished("P01_01") and not writer.finished("P01_02")
    writer.close()
    other = {**settings, "model": "other"}
    with pytest.raises(EpicArError) as refused:
        open_writer(fmt, out, other)
    model = settings["model"]
    where = f"{out}.parts" if fmt == "segments" else out  # a segments run under way: its parts
    assert str(refused.value) == (
        f"{where}: was written with model={model}, not model=other; "
        "use another output or pass force=True to start again"
    )
    assert "pass --force to start" in refused.value.text.render(
        lambda name: "--force" if name == "force" else None
    )
    with pytest.raises(EpicArError, match="was written with no extra, not extra=2; "):
        open_writer(fmt, out, {**settings, "extra": 2})
    writer = open_writer(fmt, out, other, force=True)
    assert not writer.finished("P01_01")
    writer.close()
    writer = open_writer(fmt, out, other)
    assert not writer.finished("P01_01")
    writer.close()
    if fmt == "rulstm-lmdb":
        assert frame_keys(read_rulstm(out), "P01_01") == []


def test_wrong_kinds_of_output_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    formats: tuple[FeatureFormat, ...] = ("rulstm-lmdb", "actionformer")
    for fmt in formats:
        with pytest.raises(EpicArError, match=f"{a_file}: is a file; {fmt} writes a folder"):
            open_writer(fmt, a_file, SETTINGS[fmt])
    with pytest.raises(EpicArError, match=f"{tmp_path}: is a directory"):
        open_writer("segments", tmp_path, SEGMENTS)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "a.txt").write_text("x")
    with pytest.raises(EpicArError, match="holds other files, not an LMDB environment"):
        open_writer("rulstm-lmdb", busy, RULSTM, force=True)
    foreign = tmp_path / "foreign"
    env = lmdb.open(str(foreign), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"P01_01_frame_0000000001.jpg", b"1234")
    env.close()
    with pytest.raises(EpicArError, match="is an LMDB environment that epic-ar did not write"):
        open_writer("rulstm-lmdb", foreign, RULSTM, force=True)
    assert read_rulstm(foreign) == {b"P01_01_frame_0000000001.jpg": b"1234"}
    with pytest.raises(EpicArError, match="format=NAME: 'lmdb' is not one of rulstm-lmdb, "):
        open_writer("lmdb", tmp_path / "x", RULSTM)  # type: ignore[arg-type]
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "data.mdb").write_bytes(b"not lmdb" * 1000)
    with pytest.raises(EpicArError, match=f"{garbage}: cannot open as an LMDB environment"):
        open_writer("rulstm-lmdb", garbage, RULSTM)


# Run in a child process: commit P01_01, then start committing P01_02 and die by SIGKILL in
# the middle (LMDB: after 100 puts of its transaction; npz: at the rename).
