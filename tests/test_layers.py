"""The package layers: a module imports only from its own folder and the folders below it."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.repository import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "epic_ar"
# Bottom to top: the data's path through the system, with the shared basics first.
# `configs` (the packaged Hydra YAML and their names) sits below `training`, which checks a
# run's config name against them.
LAYERS = [
    "errors", "progress", "fileio", "modality", "compat", "annotations", "gulp", "data",
    "models", "configs", "training", "prediction", "features", "export", "evaluation",
    "synthetic", "visualize",
    "cli",
]  # fmt: skip


def imported_layers(path: Path) -> set[str]:
    """The top-level parts of epic_ar that `path` imports (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("epic_ar.")}
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    parts.discard("py.typed")
    assert parts - set(LAYERS) == set()


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part.startswith("_"):
            continue  # __init__ / __main__ of the package itself
        level = LAYERS.index(part)
        upward += [
            f"{path.relative_to(PACKAGE)} imports epic_ar.{other}"
            for other in sorted(imported_layers(path))
            if LAYERS.index(other) > level
        ]
    assert upward == []
