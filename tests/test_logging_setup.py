"""Importing `epic_ar.training` changes no warnings filter and no logger; the commands that run
Lightning quieten it themselves (`epic_ar.training.logging_setup.quiet_lightning`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

# Run in a fresh interpreter: this process has imported everything already. Lightning is
# imported first, since it sets up its own loggers at import; then the snapshot of every
# warnings filter and every logger's handlers, filters, propagation and level is taken
# before and after importing epic_ar.training (and, last, after `quiet_lightning`).
SNAPSHOTS = textwrap.dedent(
    """
    import json, logging, warnings
    import lightning

    def snapshot():
        names = ["", *sorted(logging.root.manager.loggerDict)]
        loggers = {}
        for name in names:
            logger = logging.getLogger(name)
            loggers[name] = [
                [repr(handler) for handler in logger.handlers],
                [repr(item) for item in logger.filters],
                logger.propagate,
                logger.level,
            ]
        return {"warnings": [repr(entry) for entry in warnings.filters], "loggers": loggers}

    before = snapshot()
    import epic_ar.training
    import epic_ar.training.metrics, epic_ar.training.scoring, epic_ar.training.trainer_types
    imported = snapshot()
    epic_ar.training.logging_setup.quiet_lightning()
    quietened = snapshot()
    print(json.dumps([before, imported, quietened]))
    """
)
UNTOUCHED_LOGGER = [[], [], True, 0]  # a logger that only exists: no handler, no filter
Snapshot = dict[str, Any]  # "warnings": [repr], "loggers": {name: [handlers, filters, ...]}


@pytest.fixture(scope="module")
def snapshots() -> list[Snapshot]:
    done = subprocess.run(
        [sys.executable, "-c", SNAPSHOTS], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: list[Snapshot] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_training_changes_no_warnings_filter_and_no_logger(
    snapshots: list[Snapshot],
) -> None:
    before, imported, _ = snapshots
    assert imported["warnings"] == before["warnings"]
    for name, state in imported["loggers"].items():
        assert state == before["loggers"].get(name, UNTOUCHED_LOGGER), name


def test_quiet_lightning_filters_its_warning_and_routes_its_logs(
    snapshots: list[Snapshot],
) -> None:
    """The set-up the commands call does change what the import must not (so the snapshot
    above would see it)."""
    _, imported, quietened = snapshots
    new_filters = [entry for entry in quietened["warnings"] if entry not in imported["warnings"]]
    assert len(new_filters) == 2
    assert any("treespec" in entry for entry in new_filters)
    assert any("eval mode" in entry for entry in new_filters)
    loggers = quietened["loggers"]
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        handlers, _, propagate, _ = loggers[name]
        assert handlers == [] and propagate is True, name
    rank_zero = loggers["lightning.pytorch.utilities.rank_zero"]
    assert any("_not_an_advert" in item for item in rank_zero[1])
    assert imported["loggers"]["lightning.pytorch"][0] != []  # Lightning's own handler
