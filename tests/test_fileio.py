"""The shared file helpers: the one torch-file loader and its messages, the one prefix rule
for state dict keys, the one formatter for lists in messages; and the trust warning as the
library and the command line word it."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import listed, one_line
from epic_ar.fileio.safe_pickle import RefusedGlobalError
from epic_ar.fileio.state_dicts import strip_key_prefixes
from epic_ar.fileio.torch_files import TRUST, TorchFileKind, TrustedLoadWarning, load_torch_file
from epic_ar.models.checkpoint_file import read_checkpoint
from helpers.cli import RunCli

KIND = TorchFileKind(unreadable="not a readable thing", allowed="things only")
SYSTEM = f"{os.system.__module__}.{os.system.__name__}"  # how a pickle names it: posix.system


class _Hostile:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.target}",))


def _legacy_header_length(data: bytes) -> int:
    """Bytes before the object in a legacy `torch.save` file: three pickles (the magic
    number, the protocol version, the system info), read here with the standard unpickler."""
    stream = io.BytesIO(data)
    for _ in range(3):
        pickle.load(stream)
    return stream.tell()


def test_listed_counts_or_elides_what_it_leaves_out() -> None:
    assert listed([]) == ""
    assert listed(["a", "b"]) == "a, b"
    assert listed(list("abcde")) == "a, b, c, d, e"  # exactly the limit: nothing left out
    assert listed(list("abcdefg")) == "a, b, c, d, e (+2 more)"
    assert listed(list("abcdefg"), count_more=False) == "a, b, c, d, e, ..."
    assert listed(range(12), 3) == "0, 1, 2 (+9 more)"
    ids = np.array(["P01_01_0", "P01_01_1", "P02_03_7"])
    assert listed(ids, 2, count_more=False) == "P01_01_0, P01_01_1, ..."
    assert listed(np.arange(3)) == "0, 1, 2"


def test_one_line_joins_lines_and_names_silent_exceptions() -> None:
    assert one_line(ValueError("Error tokenizing data.\n  C error: x\n")) == (
        "Error tokenizing data. C error: x"
    )
    assert one_line(EOFError()) == "EOFError"


def test_strip_key_prefixes_removes_wrapper_names_only() -> None:
    state = {
        "model.a": 1,
        "module.b": 2,
        "model.module.c": 3,
        "module.model.model.d": 4,
        "e": 5,
        "base_model.conv1.weight": 6,
        "model_x.g": 7,
        "modelx": 8,
        "new_fc.model.bias": 9,
    }
    assert strip_key_prefixes(state) == {
        "a": 1,
        "b": 2,
        "c": 3,
        "d": 4,
        "e": 5,
        "base_model.conv1.weight": 6,
        "model_x.g": 7,
        "modelx": 8,
        "new_fc.model.bias": 9,
    }
    assert list(strip_key_prefixes(state))[:2] == ["a", "b"]  # order kept
    assert strip_key_prefixes({}) == {}


def test_load_torch_file_returns_tensors_and_numpy_data(tmp_path: Path) -> None:
    path = tmp_path / "good.pt"
    stored = {"w": torch.arange(6.0).reshape(2, 3), "a": np.array([1, 2]), "n": [1, "x"]}
    torch.save(stored, path)
    loaded = load_torch_file(path, KIND)
    assert torch.equal(loaded["w"], torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]))
    assert loaded["a"].tolist() == [1, 2] and loaded["n"] == [1, "x"]


def test_refused_globals_are_named_and_never_run(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "hostile.pt"
    torch.save({"w": torch.zeros(2), "x": _Hostile(target)}, path)
    with pytest.raises(RefusedGlobalError) as refused:
        load_torch_file(path, KIND)
    assert str(refused.value) == f"{path}: refused to load '{SYSTEM}': things only"
    assert refused.value.global_name == SYSTEM and refused.value.trust_parameter is None
    trusting_kind = TorchFileKind("not a readable thing", "things only", trust_parameter=TRUST)
    with pytest.raises(RefusedGlobalError) as with_hint:
        load_torch_file(path, trusting_kind)
    assert str(with_hint.value) == (
        f"{path}: refused to load '{SYSTEM}': things only; if you trust the file, pass "
        "trust=True (it runs what the file names)"
    )
    assert not target.exists()


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer, _use_new_zipfile_serialization=False)
    header = _legacy_header_length(buffer.getvalue())
    cut, empty = tmp_path / "cut.pt", tmp_path / "empty.pt"
    cut.write_bytes(buffer.getvalue()[:header])  # ends before the object
    empty.write_bytes(b"")
    naming = TorchFileKind("not a readable thing", "things only", name_early_end=True)
    for path, reason in [(cut, "the file ends early: truncated?"), (empty, "empty file")]:
        with pytest.raises(EpicArError) as named:
            load_torch_file(path, naming)
        assert str(named.value) == f"{path}: not a readable thing ({reason})"
        with pytest.raises(EpicArError) as bare:
            load_torch_file(path, KIND)
        assert str(bare.value) == f"{path}: not a readable thing (EOFError)"


def test_unpickling_failures_and_other_failures_are_worded_apart(tmp_path: Path) -> None:
    kind = TorchFileKind("unreadable thing", "things only", corrupted="corrupted thing")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer, _use_new_zipfile_serialization=False)
    garbled = tmp_path / "garbled.pt"  # the object's pickle starts with opcode 0: unknown
    garbled.write_bytes(buffer.getvalue()[: _legacy_header_length(buffer.getvalue())] + b"\0")
    with pytest.raises(EpicArError, match=r"^.*garbled\.pt: unreadable thing \(.+\)$"):
        load_torch_file(garbled, kind)
    zipped = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, zipped)
    archive = tmp_path / "archive.pt"
    archive.write_bytes(zipped.getvalue()[:300])  # no central directory: not a pickle error
    with pytest.raises(EpicArError) as corrupted:
        load_torch_file(archive, kind)
    assert str(corrupted.value).startswith(f"{archive}: corrupted thing (")
    with pytest.raises(EpicArError) as default:
        load_torch_file(archive, KIND)
    assert str(default.value).startswith(f"{archive}: not a readable thing (")


def test_trust_warning_names_the_parameter_in_the_library(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    torch.save({"a": 1}, path)
    with pytest.warns(TrustedLoadWarning) as caught:
        assert read_checkpoint(path, trust=True) == {"a": 1}
    assert [str(warning.message) for warning in caught] == [
        f"{path}: loading with trust=True runs any code the file names"
    ]


@pytest.mark.slow  # a subprocess that imports torch
def test_trust_warning_names_the_flag_on_the_command_line(run_cli: RunCli, tmp_path: Path) -> None:
    torch.save({"a": 1}, tmp_path / "c.ckpt")
    done = run_cli("test", "c.ckpt", "r.pt", "--split", "val", "--trust")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    warning_lines = [line for line in lines if "UserWarning: " in line]
    assert len(warning_lines) == 1, done.stderr
    assert warning_lines[0].endswith(
        "UserWarning: c.ckpt: loading with --trust runs any code the file names"
    )
    assert lines[-1] == "epic-ar test: error: c.ckpt: no model config under 'hyper_parameters'"
    assert "trust=True" not in done.stderr and not (tmp_path / "r.pt").exists()
