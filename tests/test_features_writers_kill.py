"""Feature writers killed with SIGKILL in the middle of a commit, then resumed; two
processes committing to one LMDB environment at once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epic_ar.features.writers import FeatureFormat, open_writer
from helpers.feature_writers import (
    RULSTM,
    SETTINGS,
    SRC,
    features,
    frame_keys,
    output_of,
    read_npz,
    read_rulstm,
    rulstm_frame,
)

KILLED_COMMIT = """
import os, signal, sys
import lmdb, numpy as np
from pathlib import Path
sys.path.insert(0, {src!r})
from epic_ar.features.writers import open_writer

fmt, out, data = {fmt!r}, Path({out!r}), np.load({data!r})
armed = False

def die():
    os.kill(os.getpid(), signal.SIGKILL)

class Txn:
    def __init__(self, txn):
        self.txn, self.puts = txn, 0
    def __getattr__(self, name):
        return getattr(self.txn, name)
    def __enter__(self):
        self.txn.__enter__()
        return self
    def __exit__(self, *exc):
        return self.txn.__exit__(*exc)
    def put(self, *args, **kwargs):
        self.puts += 1
        if armed and self.puts > 100:
            die()
        return self.txn.put(*args, **kwargs)

class Env:
    def __init__(self, env):
        self.env = env
    def __getattr__(self, name):
        return getattr(self.env, name)
    def begin(self, *args, **kwargs):
        return Txn(self.env.begin(*args, **kwargs))

real_open, real_replace = lmdb.open, os.replace
lmdb.open = lambda *args, **kwargs: Env(real_open(*args, **kwargs))

def replace(*args, **kwargs):
    if armed:
        die()
    return real_replace(*args, **kwargs)

os.replace = replace
writer = open_writer(fmt, out, {settings!r})
for video in ("P01_01", "P01_02"):
    armed = video == "P01_02"
    rows = data[video]
    writer.commit(video, rows, [video + "_" + str(i) for i in range(len(rows))])
print("not killed")
"""


def contents_of(fmt: FeatureFormat, out: Path) -> dict[Any, Any]:
    if fmt == "rulstm-lmdb":
        return read_rulstm(out)
    if fmt == "actionformer":
        return {p.name: read_npz(p) for p in sorted(out.glob("*.npz"))}
    return read_npz(out)


def assert_same_contents(got: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_contents(got[key], value)
        elif isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype
            np.testing.assert_array_equal(got[key], value)
        else:
            assert got[key] == value


@pytest.mark.parametrize("fmt", ["rulstm-lmdb", "actionformer", "segments"])
def test_sigkill_in_a_commit_then_resume_equals_a_clean_run(
    fmt: FeatureFormat, tmp_path: Path
) -> None:
    videos = {"P01_01": features(8, 150), "P01_02": features(9, 150)}
    np.savez(tmp_path / "data.npz", P01_01=videos["P01_01"], P01_02=videos["P01_02"])
    out = output_of(fmt, tmp_path / "killed")
    code = KILLED_COMMIT.format(
        src=SRC, fmt=fmt, out=str(out), data=str(tmp_path / "data.npz"), settings=SETTINGS[fmt]
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == -signal.SIGKILL, run.stdout + run.stderr

    writer = open_writer(fmt, out, SETTINGS[fmt])
    assert writer.finished("P01_01")
    assert not writer.finished("P01_02")
    if fmt == "rulstm-lmdb":
        writer.close()
        assert frame_keys(read_rulstm(out), "P01_02") == []
        assert rulstm_frame(out, "P01_01", 150) is not None
        writer = open_writer(fmt, out, SETTINGS[fmt])
    if fmt == "actionformer":
        assert not (out / "P01_02.npz").exists()
    names = {video: [f"{video}_{i}" for i in range(150)] for video in videos}
    writer.commit("P01_02", videos["P01_02"], names["P01_02"])
    order = [*names["P01_01"], *names["P01_02"]]
    writer.finish(order)

    clean = output_of(fmt, tmp_path / "clean")
    writer = open_writer(fmt, clean, SETTINGS[fmt])
    for video, rows in videos.items():
        writer.commit(video, rows, names[video])
    writer.finish(order)
    assert_same_contents(contents_of(fmt, out), contents_of(fmt, clean))
    if fmt == "actionformer":  # the killed rename left its temporary file: no reader looks
        left = sorted(p.name for p in out.iterdir() if p.name not in ("P01_01.npz", "P01_02.npz"))
        assert len(left) == 1 and left[0].startswith(".P01_02.npz.") and left[0].endswith(".tmp")


# Run in two child processes at once: each commits its own videos to one environment whose
# map starts at 1 MiB, so that both grow it.
CONCURRENT = """
import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, {src!r})
from epic_ar.features.writers import open_writer

writer = open_writer("rulstm-lmdb", Path({out!r}), {settings!r}, initial_map_size=1 << 20)
for k in range(4):
    writer.commit("P0{who}_0" + str(k), np.full((400, 1024), {who} * 10 + k, np.float32))
writer.close()
"""


def test_two_processes_commit_to_one_environment(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONCURRENT.format(src=SRC, out=str(out), settings=RULSTM, who=who),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for who in (1, 2)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
    contents = read_rulstm(out)
    writer = open_writer("rulstm-lmdb", out, RULSTM)
    for who in (1, 2):
        for k in range(4):
            video = f"P0{who}_0{k}"
            assert writer.finished(video)
            keys = frame_keys(contents, video)
            assert len(keys) == 400
            values = np.stack([np.frombuffer(contents[key], "float32") for key in keys])
            assert (values == who * 10 + k).all()
    writer.close()
