"""Files of the wrong kind or split, and outputs of the wrong type: an annotations file given
as results (or the arguments of evaluate swapped), a results file given as a checkpoint or
as labels, an ONNX model named .pt, the labels or results of another split than the one
named, a submission not named .zip. Each says in one line what the file is and what was
expected, before any work (no warnings first), and writes nothing."""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from epic_ar.annotations.labels import read_annotations
from epic_ar.annotations.splits import Split, check_labels_split, split_named_by
from epic_ar.errors import EpicArError
from epic_ar.evaluation.results import PROVENANCE_KEY, Results, recorded_splits, save_results
from epic_ar.evaluation.submission import (
    SupervisionLevels,
    submission_split_warning,
    write_submission,
)
from epic_ar.fileio import kinds
from epic_ar.fileio.safe_pickle import RefusedGlobalError
from helpers.bad_input import LABELS, one_error_line, run
from helpers.factories import make_results, write_labels_csv
from helpers.results_files import SERIALISATIONS, CreatesFile, write_object

RESULTS_NOT = "not a results file (epic-ar test writes those)"
LABELS_NOT = "not an annotations file (the official EPIC_100_*.csv or .pkl)"
CHECKPOINT_NOT = "not a checkpoint (epic-ar train and download write those)"
# Pickles of protocols 0 and 1 start without a header: their kind is not told.
HEADED_SERIALISATIONS = [s for s in SERIALISATIONS if s not in ("pickle0", "pickle1")]


def onnx_model_bytes() -> bytes:
    """A real ONNX model (one Identity node), as the onnx package serialises it."""
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    tensor = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [tensor], [out])
    data: bytes = helper.make_model(graph, producer_name="pytorch").SerializeToString()
    return data


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """One file of each kind, in its own folder: results, labels (.csv and .pkl), a
    checkpoint in Lightning's layout, an ONNX model named .pt, a submission zip."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    paths = {
        "results": folder / "r.pt",
        "labels_csv": write_labels_csv(folder / "EPIC_100_validation.csv", LABELS),
        "labels_pkl": folder / "EPIC_100_validation.pkl",
        "checkpoint": folder / "last.ckpt",
        "onnx": folder / "model.pt",
        "submission": folder / "s.zip",
    }
    save_results(make_results(6), paths["results"])
    pd.DataFrame(LABELS).set_index("narration_id").to_pickle(paths["labels_pkl"])
    torch.save({"epoch": 0, "global_step": 1, "state_dict": {}}, paths["checkpoint"])
    paths["onnx"].write_bytes(onnx_model_bytes())
    write_submission(make_results(2), paths["submission"], SupervisionLevels())
    return paths


# --- 1. Files of the wrong kind: what the file is, what was expected ---


@pytest.mark.parametrize(
    ("command", "args", "given", "message"),
    [
        ("fuse", ["labels_pkl", "results", "OUT/f.pt"], "labels_pkl",
         f"an annotations file, {RESULTS_NOT}"),
        ("fuse", ["results", "checkpoint", "OUT/f.pt"], "checkpoint",
         f"a checkpoint, {RESULTS_NOT}"),
        ("submit", ["onnx", "OUT/s.zip"], "onnx", f"an ONNX model, {RESULTS_NOT}"),
        ("submit", ["submission", "OUT/s.zip"], "submission",
         f"a challenge submission zip, {RESULTS_NOT}"),
        ("synthetic-results", ["results", "OUT/r.pt"], "results",
         f"a results file, {LABELS_NOT}"),
        ("synthetic-results", ["onnx", "OUT/r.pt"], "onnx", f"an ONNX model, {LABELS_NOT}"),
        ("test", ["results", "OUT/r.pt", "--split", "val"], "results",
         f"a results file, {CHECKPOINT_NOT}"),
        ("test", ["labels_pkl", "OUT/r.pt", "--split", "val"], "labels_pkl",
         f"an annotations file, {CHECKPOINT_NOT}"),
        ("evaluate", ["results", "results"], "results", f"a results file, {LABELS_NOT}"),
        ("evaluate", ["results", "checkpoint"], "checkpoint", f"a checkpoint, {LABELS_NOT}"),
    ],
)  # fmt: skip
def test_a_file_of_another_kind_is_named_for_what_it_is(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    files: dict[str, Path],
    command: str,
    args: list[str],
    given: str,
    message: str,
) -> None:
    out = tmp_path / "out"
    argv = [str(files[a]) if a in files else a.replace("OUT", str(out)) for a in args]
    status, stdout, err = run(capsys, command, *argv)
    assert status == 1 and stdout == ""
    assert one_error_line(err, command) == f"{files[given]}: {message}"
    assert not out.exists()


@pytest.mark.parametrize("labels", ["labels_pkl", "labels_csv"])
def test_evaluate_with_its_arguments_swapped_says_so_before_any_warning(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    files: dict[str, Path],
    labels: str,
) -> None:
    # no tail/unseen tables beside either file: evaluate would warn about each of them
    with caplog.at_level(logging.WARNING):
        status, stdout, err = run(capsys, "evaluate", files[labels], files["results"])
    assert status == 1 and stdout == ""
    assert one_error_line(err, "evaluate") == (
        f"{files[labels]}: an annotations file, {RESULTS_NOT}; the results come first, "
        "then the labels"
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_evaluate_labels_without_classes_name_the_missing_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: dict[str, Path]
) -> None:
    no_classes = [
        {key: value for key, value in row.items() if not key.endswith("_class")} for row in LABELS
    ]
    labels = write_labels_csv(tmp_path / "my_labels.csv", no_classes)
    status, stdout, err = run(capsys, "evaluate", files["results"], labels)
    assert status == 1 and stdout == ""
    assert one_error_line(err, "evaluate") == (
        f"{labels}: missing column(s) 'verb_class', 'noun_class' (columns: participant_id); "
        "the labels of the test split are not public (write a submission with `epic-ar "
        "submit` instead)"
    )


def test_show_names_the_flow_numbered_labels_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    flow_labels = write_labels_csv(
        tmp_path / "EPIC_100_validation_flow.csv",
        [{"narration_id": "P01_01_0", "participant_id": "P01", "video_id": "P01_01",
          "start_frame": 1, "stop_frame": 9, "frame_numbers": "flow"}],
    )  # fmt: skip
    out = tmp_path / "p.png"
    status, _, err = run(capsys, "show", frames, out, "--labels", flow_labels, "--random", "1")
    assert status == 1
    assert one_error_line(err, "show") == (
        f"{flow_labels}: holds flow frame numbers (converted for flow); RGB frames need the "
        "annotations with RGB frame numbers"
    )
    assert not out.exists()


# --- 2. Labels and results of another split ---


@pytest.mark.parametrize(
    ("split", "labels", "named"),
    [
        ("val", "EPIC_100_train.pkl", "train"),
        ("val", "EPIC_100_test_timestamps.csv", "test"),
        ("test", "EPIC_100_validation.pkl", "val"),
        ("test", "EPIC_100_validation_flow.pkl", "val"),
    ],
)
def test_test_refuses_the_labels_of_another_split_by_their_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, split: str, labels: str, named: str
) -> None:
    path = write_labels_csv(tmp_path / labels, LABELS)
    out = tmp_path / "r.pt"
    args = ["test", tmp_path / "absent.ckpt", out, "--split", split, "--frames-dir", tmp_path]
    status, stdout, err = run(capsys, *args, "--labels", path)
    assert status == 1 and stdout == ""
    official = "EPIC_100_validation" if split == "val" else "EPIC_100_test_timestamps"
    assert one_error_line(err, "test") == (
        f"{path}: by its name, the {named} split's annotations, not the {split} split's "
        f"(--split {split}); give {official}.csv or .pkl"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [labels]  # checked before any work


def test_test_takes_labels_under_other_names_as_the_users_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    own = write_labels_csv(tmp_path / "my_val_subset.csv", LABELS)
    checkpoint = tmp_path / "absent.ckpt"
    args = ["test", checkpoint, tmp_path / "r.pt", "--split", "test", "--frames-dir", tmp_path]
    status, _, err = run(capsys, *args, "--labels", own)
    assert status == 1  # the labels pass; the missing checkpoint is the next thing refused
    assert one_error_line(err, "test") == f"{checkpoint}: no such checkpoint file"


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("EPIC_100_train.csv", "train"),
        ("EPIC_100_train_flow.pkl", "train"),
        ("EPIC_100_train", "train"),
        ("EPIC_100_validation.pkl", "val"),
        ("EPIC_100_test_timestamps.csv", "test"),
        ("EPIC_100_trainval.csv", None),  # another stem: the user's own file
        ("EPIC_100_test_narration_ids.txt", None),
        ("epic_100_train.csv", None),
        ("validation.csv", None),
    ],
)
def test_split_named_by_the_official_file_names(name: str, split: Split | None) -> None:
    assert split_named_by(Path("/data") / name) == split
    if split is not None:
        check_labels_split(Path(name), split)  # its own split: no error


def test_the_library_names_its_parameter() -> None:
    with pytest.raises(EpicArError) as caught:
        check_labels_split(Path("EPIC_100_train.pkl"), "test")
    assert str(caught.value) == (
        "EPIC_100_train.pkl: by its name, the train split's annotations, not the test split's "
        "(split='test'); give EPIC_100_test_timestamps.csv or .pkl"
    )


def with_provenance(results: Results, record: object) -> Results:
    results.extra[PROVENANCE_KEY] = record
    return results


def test_recorded_splits_follow_test_and_fuse_records() -> None:
    assert recorded_splits(make_results(2)) == set()  # other tools' files record none
    assert recorded_splits(with_provenance(make_results(2), {"split": "val"})) == {"val"}
    fused = {"made_by": "fuse", "inputs": [
        {"file": "a.pt", PROVENANCE_KEY: {"split": "test"}},
        {"file": "b.pt", PROVENANCE_KEY: None},
        {"file": "c.pt", PROVENANCE_KEY: {"inputs": [{PROVENANCE_KEY: {"split": "val"}}]}},
    ]}  # fmt: skip
    assert recorded_splits(with_provenance(make_results(2), fused)) == {"test", "val"}
    looped: dict[str, object] = {"split": "test"}
    looped["inputs"] = [{PROVENANCE_KEY: looped}]  # a pickle can hold a cycle
    assert recorded_splits(with_provenance(make_results(2), looped)) == {"test"}


def test_submit_warns_once_when_the_results_record_another_split(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    labels_file = write_labels_csv(tmp_path / "labels.csv", LABELS)
    fused = {"inputs": [{PROVENANCE_KEY: {"split": "val"}}, {PROVENANCE_KEY: {"split": "val"}}]}
    results = tmp_path / "fused_val.pt"
    save_results(with_provenance(make_results(6), fused), results)
    out = tmp_path / "s.zip"
    with caplog.at_level(logging.WARNING):
        status, _, err = run(capsys, "submit", results, out, "--labels", labels_file)
    assert status == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"{results} is not the EPIC-KITCHENS-100 test split, which the challenge expects: "
        "its provenance names the val split"
    ]
    with zipfile.ZipFile(out) as archive:  # the design is kept: a warning, not a refusal
        assert archive.namelist() == ["test.json"]


def test_submission_split_warning_from_the_library() -> None:
    tested = with_provenance(make_results(6), {"split": "test"})
    ids = tested.narration_id
    warning = submission_split_warning(tested, source="r.pt", labels=None)
    assert warning is not None  # not the test split's ids: reported, suggesting labels
    assert str(warning).startswith(
        "r.pt is not the EPIC-KITCHENS-100 test split, which the challenge expects: "
        "13092 of 13092 segments missing"
    )
    assert str(warning).endswith("(to check against another split, give its annotations with "
                                 "labels)")  # fmt: skip
    assert "provenance" not in str(warning)
    assert warning.render({"labels": "--labels"}.get).endswith("with --labels)")
    valued = with_provenance(make_results(6), {"split": "val"})
    assert np.array_equal(valued.narration_id, ids)
    both = submission_split_warning(valued, source="v.pt")
    assert both is not None
    assert str(both).startswith(
        "v.pt is not the EPIC-KITCHENS-100 test split, which the challenge expects: its "
        "provenance names the val split; 13092 of 13092 segments missing"
    )


# --- 3. Outputs of the wrong type ---


def test_submit_refuses_an_output_not_named_zip_before_reading_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "submission.json"
    status, stdout, err = run(capsys, "submit", tmp_path / "absent.pt", out)
    assert status == 1 and stdout == ""
    assert one_error_line(err, "submit") == (
        f"{out}: a submission is a zip archive; give a name ending in .zip"
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EpicArError, match=r"submission\.json: a submission is a zip archive"):
        write_submission(make_results(2), out, SupervisionLevels())
    assert list(tmp_path.iterdir()) == []
    write_submission(make_results(2), tmp_path / "S.ZIP", SupervisionLevels())  # any case


def test_export_refuses_an_output_not_named_onnx(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for module in ("onnx", "onnxscript", "onnxruntime"):  # the export extra, checked first
        pytest.importorskip(module)
    out = tmp_path / "model.pt"
    status, stdout, err = run(capsys, "export", tmp_path / "absent.ckpt", out)
    assert status == 1 and stdout == ""
    assert one_error_line(err, "export") == (
        f"{out}: the export is an ONNX model; give a name ending in .onnx"
    )
    assert list(tmp_path.iterdir()) == []


# --- 4. Telling kinds apart: every serialisation, and refusals kept ---


@pytest.mark.parametrize("serialisation", HEADED_SERIALISATIONS)
@pytest.mark.parametrize("layout", ["dict", "list"])
def test_results_are_recognised_in_every_binary_serialisation(
    tmp_path: Path, serialisation: str, layout: str
) -> None:
    data = make_results(2).to_dict()
    obj = data if layout == "dict" else [{k: v[i] for k, v in data.items()} for i in range(2)]
    path = write_object(obj, tmp_path / "r.pt", serialisation)
    assert kinds.file_kind(path) == kinds.RESULTS


def test_other_kinds_are_recognised(
    tmp_path: Path, files: dict[str, Path], official_annotations: Path
) -> None:
    assert kinds.file_kind(files["labels_csv"]) == kinds.ANNOTATIONS
    for protocol in (2, 3, 4, 5):
        frame = pd.DataFrame(LABELS).set_index("narration_id")
        frame.to_pickle(tmp_path / "a.pkl", protocol=protocol)
        assert kinds.file_kind(tmp_path / "a.pkl") == kinds.ANNOTATIONS
    for name in ("EPIC_100_validation.pkl", "EPIC_100_test_timestamps.pkl"):  # old pandas
        assert kinds.file_kind(official_annotations / name) == kinds.ANNOTATIONS
    assert kinds.file_kind(files["checkpoint"]) == kinds.CHECKPOINT
    assert kinds.file_kind(files["onnx"]) == kinds.ONNX_MODEL
    assert kinds.file_kind(files["submission"]) == kinds.SUBMISSION
    torch.save({"weights": torch.zeros(2)}, tmp_path / "w.pt")
    assert kinds.file_kind(tmp_path / "w.pt") == kinds.TORCH_FILE
    unknown = {"text.csv": b"verb,noun\n1,2\n", "empty": b"", "p.pkl": pickle.dumps({"a": 1})}
    for name, content in unknown.items():
        (tmp_path / name).write_bytes(content)
        assert kinds.file_kind(tmp_path / name) is None, name
    assert kinds.file_kind(tmp_path / "absent") is None


def test_a_torch_file_of_unknown_content_keeps_the_loaders_own_error(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    error = EpicArError(f"{path}: missing key(s) verb_output")
    kinds.refuse_other_kind(path, kinds.RESULTS, error)  # may be results: nothing raised
    with pytest.raises(kinds.WrongKindError, match=r"w\.pt: a torch file, not an annotations"):
        kinds.refuse_other_kind(path, kinds.ANNOTATIONS, error)


def test_a_hostile_file_is_still_called_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "labels.pkl"  # a results file's first keys, then a payload
    results = make_results(1).to_dict()
    write_object({**results, "payload": CreatesFile(target)}, path, "pickle4")
    assert kinds.file_kind(path) == kinds.RESULTS
    with pytest.raises(RefusedGlobalError, match="refused to load"):
        read_annotations(path)
    assert not target.exists()


def test_submission_split_warning_names_labels_named_for_another_split(tmp_path: Path) -> None:
    labels = write_labels_csv(tmp_path / "EPIC_100_validation.csv", LABELS)
    results = make_results(len(LABELS))
    results = Results(
        results.verb_output,
        results.noun_output,
        read_annotations(labels).index.to_numpy(dtype=str),
        {},
    )
    warning = submission_split_warning(results, source="r.pt", labels=labels)
    assert str(warning) == (
        "r.pt is not the EPIC-KITCHENS-100 test split, which the challenge expects: its "
        "segments are those of EPIC_100_validation.csv, the val split's"
    )
    renamed = labels.rename(tmp_path / "my_subset.csv")  # the user's own file: no warning
    assert submission_split_warning(results, source="r.pt", labels=renamed) is None
