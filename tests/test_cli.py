"""The `epic-ar` console script, run in a subprocess: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import lmdb
import numpy as np
import pandas as pd
import pytest

from epic_ar.cli import demo, demo_steps
from epic_ar.data.video import probe_video
from epic_ar.evaluation.results import load_results, save_results
from helpers.cli import RunCli
from helpers.factories import make_results, write_labels_csv
from helpers.official_reference import official_metrics
from helpers.results_files import as_list_layout, hostile_results, write_object

# Hand-made labels for make_results(4): 4 segments, two participants.
TINY_LABELS = [
    {"narration_id": f"P01_01_{i}", "participant_id": p, "verb_class": v, "noun_class": n}
    for i, (p, v, n) in enumerate([("P01", 0, 1), ("P01", 2, 1), ("P02", 1, 0), ("P02", 10, 56)])
]


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_help_lists_every_command(run_cli: RunCli) -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("fuse", "evaluate", "submit", "demo"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("command", "absent"),
    [
        (None, ("torch", "pandas", "hydra", "lightning")),
        ("evaluate", ("torch", "hydra", "lightning")),
        ("fuse", ("torch", "hydra", "lightning")),
    ],
)
def test_commands_import_only_what_they_need(command: str | None, absent: tuple[str, ...]) -> None:
    # `epic-ar --help` and the results commands start fast: no torch behind their parsers
    code = (
        "import sys; from epic_ar.cli.main import build_parser; "
        f"build_parser({command!r}); "
        f"print(','.join(m for m in {absent!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_evaluate_runs_without_importing_torch(tmp_path: Path) -> None:
    # The whole command, not only its parser: reading a results file in torch's zip layout
    # (what save_results, `test` and `fuse` write), the metrics and a report.
    results, report = tmp_path / "r.pt", tmp_path / "report"
    scores = make_results(4)
    save_results(scores, results)
    with zipfile.ZipFile(results) as archive:  # the layout torch.save writes
        assert [name for name in archive.namelist() if name.endswith("/data.pkl")]
    labels = write_labels_csv(tmp_path / "labels.csv", TINY_LABELS)
    arguments = ["evaluate", str(results), str(labels), "--format", "json", "--report", str(report)]
    code = (
        "import json, sys; from epic_ar.cli.main import main; "
        f"status = main({arguments!r}); "
        "heavy = [m for m in ('torch', 'lightning', 'hydra') if m in sys.modules]; "
        "print(json.dumps([status, heavy]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *metrics_lines, last = done.stdout.strip().splitlines()
    assert json.loads(last) == [0, []]  # exit status 0, and none of them imported
    printed = json.loads("\n".join(metrics_lines))
    verbs = [row["verb_class"] for row in TINY_LABELS]
    top1 = np.mean(scores.verb_output.argmax(axis=1) == verbs) * 100
    assert printed["all_verb_accuracy_at_1"] == pytest.approx(top1)
    assert (report / "index.html").is_file()


def test_submit_help_explains_the_six_levels(run_cli: RunCli) -> None:
    text = run_cli("submit", "--help").stdout
    for phrase in ("public image and video datasets", "full temporal", "train+val", "few-shot"):
        assert phrase in text
    for option in ("--sls-pt", "--sls-tl", "--sls-td"):
        assert option in text
    assert text.count("(default ") >= 3


def test_fuse_evaluate_submit_on_the_real_validation_set(
    run_cli: RunCli, tmp_path: Path, validation_labels_csv: Path
) -> None:
    tables = validation_labels_csv.parent
    labels = pd.read_csv(validation_labels_csv).set_index("narration_id")
    rgb, flow = tmp_path / "rgb.pt", tmp_path / "flow.pkl"
    assert run_cli("synthetic-results", validation_labels_csv, rgb, "--seed", 1).returncode == 0
    # The flow file: list layout, plain pickle, shuffled order (as the original tools write).
    flow_results = load_results(rgb)
    rng = np.random.default_rng(5)
    flow_results.verb_output = flow_results.verb_output + rng.standard_normal((9668, 97)).astype(
        np.float32
    )
    shuffled = flow_results.take(rng.permutation(len(flow_results)))
    write_object(as_list_layout(shuffled), flow, "pickle2")

    fused = tmp_path / "fused.pt"
    done = run_cli("fuse", rgb, flow, fused)
    assert done.returncode == 0, done.stderr
    assert "fused 2 files (9668 segments)" in done.stdout

    done = run_cli("evaluate", fused, validation_labels_csv)
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(": ") for line in done.stdout.splitlines())
    assert list(printed) == sorted(printed) and len(printed) == 12
    result = load_results(fused)
    expected = official_metrics(
        result.verb_output,
        result.noun_output,
        labels.loc[result.narration_id],
        pd.read_csv(tables / "EPIC_100_tail_verbs.csv")["verb"].to_numpy(),
        pd.read_csv(tables / "EPIC_100_tail_nouns.csv")["noun"].to_numpy(),
        np.array(["P18", "P32"]),
    )
    assert {k: float(v) for k, v in printed.items()} == expected

    done = run_cli("evaluate", fused, validation_labels_csv, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected

    submission = tmp_path / "submission.zip"
    done = run_cli("submit", fused, submission, "--labels", validation_labels_csv, "--sls-pt", 1)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(submission) as archive:
        content = json.loads(archive.read("test.json"))
    assert content["sls_pt"] == 1 and len(content["results"]) == 9668


def test_partial_results_warn_with_coverage(run_cli: RunCli, tmp_path: Path) -> None:
    labels = write_labels_csv(tmp_path / "labels.csv", TINY_LABELS)
    results = tmp_path / "r.pt"
    save_results(make_results(4).take(np.array([0, 2, 3])), results)
    done = run_cli("evaluate", results, labels, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "results cover 3 of 4 segments" in done.stderr
    assert "EPIC_100_tail_verbs.csv not found next to the labels" in done.stderr
    metrics = json.loads(done.stdout)
    assert set(metrics) == {
        f"all_{t}_accuracy_at_{k}" for t in ("verb", "noun", "action") for k in (1, 5)
    }


def test_tables_next_to_labels_and_packaged_tables(run_cli: RunCli, tmp_path: Path) -> None:
    labels = write_labels_csv(tmp_path / "labels.csv", TINY_LABELS)
    pd.DataFrame({"participant_id": ["P02"]}).to_csv(
        tmp_path / "EPIC_100_unseen_participant_ids_validation.csv", index=False
    )
    results = tmp_path / "r.pt"
    save_results(make_results(4), results)
    metrics = json.loads(run_cli("evaluate", results, labels, "--format", "json").stdout)
    assert "unseen_verb_accuracy_at_1" in metrics and "tail_verb_accuracy_at_1" not in metrics
    done = run_cli("evaluate", results, labels, "--format", "json", "--packaged-tables")
    assert "tail_action_accuracy_at_1" in json.loads(done.stdout)
    assert "not found" not in done.stderr


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (lambda d: ["evaluate", d / "missing.pt", d / "labels.csv"], ["missing.pt: no such file"]),
        (lambda d: ["evaluate", d / "evil.pt", d / "labels.csv"], ["evil.pt: refused to load"]),
        (
            lambda d: ["evaluate", d / "other.pt", d / "labels.csv"],
            ["2 of 2 results have narration ids not in", "P07_07_0, P07_07_1"],
        ),
        (
            lambda d: [
                "evaluate",
                d / "r.pt",
                d / "labels.csv",
                "--tail-verb-classes-csv",
                d / "nope.csv",
            ],
            ["nope.csv: no such file"],
        ),
        (
            lambda d: ["evaluate", d / "r.pt", d / "other_labels.csv"],
            [
                "other_labels.csv: missing column(s) 'participant_id', 'verb_class', "
                "'noun_class' (columns: none)",
                "epic-ar submit",
            ],
        ),
        (
            lambda d: ["fuse", d / "r.pt", d / "other.pt", d / "f.pt"],
            ["narration ids differ", "4 missing from", "(P07_07_0, P07_07_1)"],
        ),
        (
            lambda d: ["fuse", d / "r.pt", d / "r.pt", d / "labels.csv"],
            ["labels.csv: already exists; pass --force"],
        ),
        (
            lambda d: ["submit", d / "r.pt", d / "s.zip", "--labels", d / "other_labels.csv"],
            ["results do not match", "4 narration ids not in the split"],
        ),
    ],
)
def test_user_errors_exit_1_with_one_line(
    run_cli: RunCli, tmp_path: Path, make_args: object, fragments: list[str]
) -> None:
    write_labels_csv(tmp_path / "labels.csv", TINY_LABELS)
    write_labels_csv(tmp_path / "other_labels.csv", [{"narration_id": "P07_07_0"}])
    save_results(make_results(4), tmp_path / "r.pt")
    save_results(make_results(2, prefix="P07_07_"), tmp_path / "other.pt")
    write_object(hostile_results(tmp_path / "pwned"), tmp_path / "evil.pt", "pickle4")
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_cli(*make_args(tmp_path))  # type: ignore[operator]
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert_one_line_error(done.stderr, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial output
    assert not (tmp_path / "pwned").exists()


def test_usage_errors_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    done = run_cli("submit", tmp_path / "r.pt", tmp_path / "s.zip", "--sls-pt", "9")
    assert done.returncode == 2
    assert "invalid choice: 9" in done.stderr


def test_force_overwrites(run_cli: RunCli, tmp_path: Path) -> None:
    save_results(make_results(4), tmp_path / "r.pt")
    out = tmp_path / "s.zip"
    out.write_bytes(b"old")
    assert run_cli("submit", tmp_path / "r.pt", out).returncode == 1
    assert out.read_bytes() == b"old"
    assert run_cli("submit", tmp_path / "r.pt", out, "--force").returncode == 0
    assert zipfile.is_zipfile(out)


@pytest.mark.slow
def test_quick_demo_runs_every_step_and_says_where_things_are(
    run_cli: RunCli, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    done = run_cli("demo", out, "--quick", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for command in (
        "synth",
        "convert-flow-idxs",
        "show",
        "gulp",
        "train --config-name tsn_rgb",
        "train --config-name tsn_flow",
        "test",
        "fuse",
        "evaluate",
        "submit",
        "predict",
        "features",
    ):
        assert f"$ epic-ar {command} " in done.stdout, command
    assert "[26/26, " in done.stdout
    assert (out / "report" / "index.html").is_file()
    assert (out / "pictures" / "flow_validation.png").is_file()
    metrics = json.loads((out / "results" / "fused_val_metrics.json").read_text())
    annotations = out / "data" / "annotations"
    fused = load_results(out / "results" / "fused_val.pt")
    validation = pd.read_csv(annotations / "EPIC_100_validation.csv").set_index("narration_id")
    tables = {
        name: pd.read_csv(annotations / f"EPIC_100_{name}.csv").iloc[:, 0].to_numpy()
        for name in ("tail_verbs", "tail_nouns", "unseen_participant_ids_validation")
    }
    assert metrics == official_metrics(  # the 12 metrics, recomputed independently
        fused.verb_output,
        fused.noun_output,
        validation.loc[fused.narration_id],
        tables["tail_verbs"],
        tables["tail_nouns"],
        tables["unseen_participant_ids_validation"],
    )
    for split, labels in (
        ("val", "EPIC_100_validation.csv"),
        ("test", "EPIC_100_test_timestamps.csv"),
    ):
        expected = list(pd.read_csv(annotations / labels).narration_id)
        for name in ("tsn_rgb", "tsn_flow", "fused"):
            assert (
                list(load_results(out / "results" / f"{name}_{split}.pt").narration_id) == expected
            )
    with zipfile.ZipFile(out / "submission.zip") as archive:
        submitted = json.loads(archive.read("test.json"))
    assert set(submitted["results"]) == set(expected)
    video = out / "data" / "videos" / "P02" / "videos" / "P02_102.MP4"
    windows = json.loads((out / "predict" / "windows.json").read_text())
    assert (windows["video"], windows["frames"]) == (str(video), probe_video(video).frame_count)
    assert len(windows["windows"]) == int(windows["frames"] / windows["fps"] / 0.5)
    summary = done.stdout.split("Done in")[1]
    for artefact in ("submission.zip", "fused_val_metrics.json", "runs/tsn_rgb", "gulp", "report"):
        assert artefact in summary, artefact
    assert "predict/windows.png" in summary and "features/rgb" in summary
    # the RULSTM database: one key per 1/30 s of the video (50 fps: a key every 5 frames)
    env = lmdb.open(str(out / "features" / "rgb"), readonly=True, lock=False)
    with env.begin() as txn:
        keys = [bytes(k).decode() for k, _ in txn.cursor() if not bytes(k).startswith(b"__")]
    env.close()
    frames = probe_video(video).frame_count
    assert keys == [f"P02_102_frame_{n:010d}.jpg" for n in range(1, frames * 30 // 50 + 1)]


def test_demo_refuses_a_folder_it_did_not_make(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    done = run_cli("demo", tmp_path)
    assert done.returncode == 1
    assert_one_line_error(done.stderr, str(tmp_path), "not an earlier demo's output")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_pickled_labels_give_the_same_metrics_as_csv(
    run_cli: RunCli, tmp_path: Path, official_annotations: Path
) -> None:
    results = tmp_path / "r.pt"
    csv = official_annotations / "EPIC_100_validation.csv"
    assert run_cli("synthetic-results", csv, results).returncode == 0
    from_csv = run_cli("evaluate", results, csv, "--format", "json")
    from_pkl = run_cli("evaluate", results, csv.with_suffix(".pkl"), "--format", "json")
    assert from_csv.returncode == from_pkl.returncode == 0, from_pkl.stderr
    assert json.loads(from_csv.stdout) == json.loads(from_pkl.stdout)
    assert len(json.loads(from_pkl.stdout)) == 12


def test_demo_evaluate_steps_say_which_results_they_score() -> None:
    art = demo_steps.DemoArtefacts(Path("/demo"))
    steps = demo_steps.demo_steps(art, demo_steps.QUICK)
    evaluated = [step for step in steps if step.args[0] == "evaluate"]
    assert [step.evaluates for step in steps if step.evaluates is not None] == [
        step.evaluates for step in evaluated
    ]
    for step in evaluated:
        assert step.args[1] == f"/demo/results/{step.evaluates}_val.pt", step.args


def test_demo_summary_reads_each_result_by_what_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever order the scores were captured in."""

    def metrics(action: float) -> dict[str, float]:
        return {"all_verb_accuracy_at_1": 1.0, "all_action_accuracy_at_1": action}

    art = demo_steps.DemoArtefacts(Path("/demo"))
    scores = {"fused": metrics(30.0), "tsn_flow": metrics(20.0)}
    scores["tsn_rgb"] = metrics(10.0)
    demo.print_summary(art, scores, demo_steps.QUICK, 65.0)
    out = capsys.readouterr().out
    assert "RGB 10.0%, flow 20.0%, fused 30.0% (chance 6.2%)" in out
    assert "  all_action_accuracy_at_1          30.00" in out
