"""Files that are not what they are given as: results that are not the test split, a
checkpoint under another model's name, folders given as files, refused or empty files; and
the messages that say so (naming the file, the URL, the refused global, the trust option)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

from epic_ar.cli import main as cli_main
from epic_ar.cli.main import error_message
from epic_ar.errors import EpicArError
from epic_ar.evaluation import submission
from epic_ar.evaluation.serialization import load_data_file
from epic_ar.fileio.safe_pickle import RefusedGlobalError
from epic_ar.models.checkpoint_file import read_checkpoint
from helpers.bad_input import OPEN, one_error_line, run
from helpers.checkpoints import filled_skeleton
from helpers.cli import RunCli
from helpers.factories import make_results
from helpers.repository import REPO_ROOT
from helpers.results_files import CreatesFile

# --- 4. Values accepted silently: submit without --labels, download under another name ---

# sha256 of the narration ids of /work/shared/annotations/EPIC_100_test_timestamps.csv, in
# file order, each followed by "\n" (computed from the official file)
TEST_IDS_SHA256 = "7995e62ccdc2dc32d14561935fdba84e4e3c84c5eb8977f3679c4e5b9ff29f6d"


def test_packaged_test_split_ids_are_the_official_ones() -> None:
    ids = submission.packaged_test_split_ids()
    assert len(ids) == 13092 == len(set(ids.tolist()))
    assert ids[0] == "P01_101_0" and ids[-1] == ids[-1].strip()
    text = "".join(f"{narration_id}\n" for narration_id in ids.tolist())
    assert hashlib.sha256(text.encode()).hexdigest() == TEST_IDS_SHA256
    # shipped in the wheel: a package-data pattern names the file
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    package_data = re.search(r"\[tool.setuptools.package-data\]\nepic_ar = (\[.*\])", pyproject)
    assert package_data is not None
    patterns = json.loads(package_data.group(1))
    name = f"annotations/tables/{submission.TEST_IDS_NAME}"
    assert any(fnmatch(name, pattern) for pattern in patterns)
    with gzip.open(REPO_ROOT / "src" / "epic_ar" / name, "rt") as file:
        assert file.read() == text


def test_submit_without_labels_warns_when_results_are_not_the_test_split(
    run_cli: RunCli, tmp_path: Path, results_file: Path
) -> None:
    done = run_cli("submit", results_file, tmp_path / "s.zip")  # logging as configured by main
    assert done.returncode == 0 and (tmp_path / "s.zip").is_file()
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1, done.stderr
    assert "is not the EPIC-KITCHENS-100 test split" in warnings[0]
    assert "13092 of 13092 segments missing (P01_101_0, " in warnings[0]
    assert "6 narration ids not in the split (P01_01_0, " in warnings[0]
    ids = submission.packaged_test_split_ids()
    partial = make_results(3)
    partial.narration_id = ids[[5, 7, 11]]
    assert submission.split_mismatch(partial, ids[:12]) == (
        f"9 of 12 segments missing ({', '.join(ids[[0, 1, 2, 3, 4]])}, ...)"
    )
    assert submission.split_mismatch(partial, ids[[11, 7, 5]]) is None


def test_download_refuses_a_checkpoint_stored_under_another_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mirror = filled_skeleton("tsn_flow", tmp_path / "mirror.ckpt")
    out = tmp_path / "checkpoints"
    status, _, err = run(capsys, "download", "tsn_rgb", out, "--url", f"file://{mirror}")
    assert status == 1
    assert one_error_line(err, "download") == (
        f"file://{mirror}: downloaded, but not stored as {out / 'tsn_rgb.ckpt'}: holds a TSN "
        "Flow model, not the TSN RGB model that tsn_rgb names"
    )
    assert not out.exists()
    status, _, err = run(capsys, "download", "trn_flow", out, "--url", f"file://{mirror}")
    assert status == 1 and "holds a TSN Flow model, not the MTRN Flow model" in err
    assert not out.exists()
    # A download never loads a file it must trust: no trust=True / --trust hint.
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "payload": CreatesFile(tmp_path / "pwned")}, hostile)
    status, _, err = run(capsys, "download", "tsn_rgb", out, "--url", f"file://{hostile}")
    assert status == 1
    assert one_error_line(err, "download") == (
        f"file://{hostile}: downloaded, but not stored as {out / 'tsn_rgb.ckpt'}: refused to "
        f"load '{OPEN}': the file names a class or function outside the checkpoint allow-list "
        "(nothing it names was run)"
    )
    assert not out.exists() and not (tmp_path / "pwned").exists()


# --- 5. Messages that said the wrong thing ---


def test_a_folder_given_as_a_file_is_called_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results_file: Path, labels_file: Path
) -> None:
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    results_cases: list[tuple[str, list[object]]] = [
        ("evaluate", [folder, labels_file]),
        ("fuse", [results_file, folder, tmp_path / "f.pt"]),
        ("submit", [folder, tmp_path / "s.zip"]),
    ]
    for command, args in results_cases:
        status, _, err = run(capsys, command, *args)
        assert status == 1
        assert one_error_line(err, command) == f"{folder}: is a folder, not a results file"
    labels_cases: list[tuple[str, list[object]]] = [
        ("evaluate", [results_file, folder]),
        ("submit", [results_file, tmp_path / "s.zip", "--labels", folder]),
    ]
    for command, args in labels_cases:
        status, _, err = run(capsys, command, *args)
        assert status == 1
        assert one_error_line(err, command).startswith(f"{folder}: is a folder, not a")
    with pytest.raises(EpicArError, match=r"is a folder, not a checkpoint file$"):
        read_checkpoint(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.pt", "inputs"]


def test_download_errors_name_the_url_and_destination_not_a_temporary_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    out = tmp_path / "checkpoints"
    status, _, err = run(capsys, "download", "tsn_rgb", out, "--url", f"file://{broken}")
    assert status == 1
    message = one_error_line(err, "download")
    assert message.startswith(
        f"file://{broken}: downloaded, but not stored as {out / 'tsn_rgb.ckpt'}: "
        "not a readable checkpoint"
    )
    assert ".tmp" not in message
    status, _, err = run(capsys, "download", "tsn_rgb", out, "--url", f"file://{tmp_path}/none")
    assert status == 1
    message = one_error_line(err, "download")
    assert message.startswith(
        f"could not download file://{tmp_path}/none (for {out / 'tsn_rgb.ckpt'})"
    )
    assert not out.exists()


def test_refused_checkpoint_names_the_global_and_the_trust_option(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "payload": CreatesFile(tmp_path / "pwned")}, hostile)
    with pytest.raises(RefusedGlobalError) as caught:
        read_checkpoint(hostile)
    refused = caught.value
    assert refused.global_name == OPEN
    assert str(refused) == (
        f"{hostile}: refused to load '{OPEN}': the file names a class or function "
        "outside the checkpoint allow-list (nothing it names was run); if you trust the file, "
        "pass trust=True (it runs what the file names)"
    )
    assert "weights_only" not in str(refused)
    # The command line names its flag where the command has one, and nothing otherwise.
    with_flag = error_message(refused, cli_main.command_flags("test"))
    assert with_flag.endswith(
        "was run); if you trust the file, pass --trust (it runs what the file names)"
    )
    assert error_message(refused, cli_main.command_flags("evaluate")).endswith(
        "(nothing it names was run)"
    )
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (0 bytes), not a results file"),
        (
            b"\x80\x02c__builtin__\nbytes\nq\x00)Rq\x01.",
            "holds no data (an empty bytes), not results",
        ),
    ],
)
def test_empty_results_file_is_called_empty(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "r.pt"
    path.write_bytes(content)
    with pytest.raises(EpicArError) as caught:
        load_data_file(path)
    assert str(caught.value) == f"{path}: {message}"
    assert "refused" not in str(caught.value)


def test_cli_main_module_stays_light() -> None:
    # the error helpers live in the entry point, which must not import numpy or torch
    done = subprocess.run(
        [sys.executable, "-c", "import sys, epic_ar.cli.main; print('numpy' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "False"
    assert cli_main.os_error_message(FileNotFoundError(2, "No such file", "a", None, "b")) == (
        "a -> b: No such file"
    )
