"""The demo's commands as printed: what they state (the submission's supervision levels),
how many there are (the docs count them), and that an evaluate step is followed by exactly
what `epic-ar evaluate` prints."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epic_ar.cli import demo
from epic_ar.cli.demo_steps import FULL, QUICK, DemoArtefacts, DemoSize, Step, demo_steps
from epic_ar.cli.main import parse_arguments
from epic_ar.errors import EpicArError
from epic_ar.evaluation.evaluate import format_metrics
from epic_ar.evaluation.results import save_results
from helpers.cli import RunCli
from helpers.factories import make_results, write_labels_csv
from helpers.repository import REPO_ROOT

ART = DemoArtefacts(Path("/demo"))


def step_of(command: str) -> Step:
    (step,) = [s for s in demo_steps(ART, QUICK) if s.args[0] == command]
    return step


@pytest.mark.parametrize("size", [QUICK, FULL])
def test_the_docs_count_the_commands_the_demo_prints(size: DemoSize) -> None:
    text = (REPO_ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    stated = re.search(r"The (\d+) commands the demo prints", text)
    assert stated is not None
    count = len(demo_steps(ART, size))
    assert count == int(stated.group(1)) == 26
    assert f"[{count}/{count}, " in text  # the docs' excerpt of the demo's last step


def test_the_submission_states_the_supervision_the_demo_used() -> None:
    submit = parse_arguments(step_of("submit").args, "submit")
    training = [s.args for s in demo_steps(ART, QUICK) if s.args[0] == "train"]
    assert len(training) == 2
    for args in training:
        # from scratch (pre-training level 0), on the train split only (data level 3)
        assert "model.pretrained=null" in args
        assert not any(arg.startswith("data.train_on_val") for arg in args)
    # 0: no pre-training; 3: start/stop frames; 3: the full train split, not train+val
    assert (submit.sls_pt, submit.sls_tl, submit.sls_td) == (0, 3, 3)


def test_evaluate_steps_run_as_a_user_would() -> None:
    evaluated = [s for s in demo_steps(ART, QUICK) if s.args[0] == "evaluate"]
    assert [s.evaluates for s in evaluated] == ["tsn_rgb", "tsn_flow", "fused"]
    for step in evaluated:
        assert "--format" not in step.args  # the default `name: value` lines


METRIC_VALUES = st.floats(allow_nan=False, allow_infinity=False)


@given(st.dictionaries(st.from_regex(r"[a-z_0-9]{1,30}", fullmatch=True), METRIC_VALUES,
                       min_size=1))  # fmt: skip
def test_metrics_are_read_back_exactly_from_the_printed_lines(metrics: dict[str, float]) -> None:
    assert demo.parse_metrics(format_metrics(metrics, "yaml"), "t") == metrics


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "printed no metrics"),
        ('{"all_verb_accuracy_at_1": 1.0}', "is not a 'name: value' metric line"),
        ("a: 1.0\nb: high", "'b: high'"),
        (": 2.0", "': 2.0'"),
    ],
)
def test_other_output_is_refused_naming_the_step(text: str, fragment: str) -> None:
    with pytest.raises(EpicArError, match="step 7 \\(x\\)") as caught:
        demo.parse_metrics(text, "7 (x)")
    assert fragment in str(caught.value)


def test_an_evaluate_step_shows_what_the_command_prints(
    run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.pt"
    save_results(make_results(4), results)
    rows = [
        {"narration_id": f"P01_01_{i}", "participant_id": p, "verb_class": v, "noun_class": n}
        for i, (p, v, n) in enumerate([("P01", 0, 1), ("P01", 2, 1), ("P02", 1, 0), ("P02", 3, 5)])
    ]
    labels = write_labels_csv(tmp_path / "labels.csv", rows)
    args = ["evaluate", str(results), str(labels), "--packaged-tables"]
    metrics = demo.run_step(Step("evaluate it", args, evaluates="x"), 3, 9, time.perf_counter())
    header, command, printed = capsys.readouterr().out.removeprefix("\n").split("\n", 2)
    assert re.fullmatch(r"\[3/9, 0:\d\d\] evaluate it", header)
    assert command == f"$ epic-ar {shlex.join(args)}"
    by_user = run_cli(*args)
    assert by_user.returncode == 0, by_user.stderr
    assert printed == by_user.stdout  # the lines under the command are the command's own
    as_json = run_cli(*args, "--format", "json")
    assert metrics == json.loads(as_json.stdout)
