"""Write results objects in every serialisation the loaders must accept."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epic_ar.evaluation.results import Results

SERIALISATIONS = ("torch_zip", "torch_legacy", *(f"pickle{p}" for p in range(6)))


def as_list_layout(results: Results) -> list[dict[str, Any]]:
    """Per-segment dicts, as the original fuse.py writes them (numpy scalars and rows)."""
    data = results.to_dict()
    return [{key: value[i] for key, value in data.items()} for i in range(len(results))]


def write_object(obj: Any, path: Path, serialisation: str) -> Path:
    if serialisation == "torch_zip":
        torch.save(obj, path)
    elif serialisation == "torch_legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        protocol = int(serialisation.removeprefix("pickle"))
        with path.open("wb") as file:
            pickle.dump(obj, file, protocol=protocol)
    return path


def as_numpy1_pickle(obj: Any, protocol: int = 2) -> bytes:
    """A pickle as numpy 1.x writes it (module `numpy.core` instead of `numpy._core`)."""
    data = pickle.dumps(obj, protocol=protocol)
    return data.replace(b"numpy._core.", b"numpy.core.")


class CreatesFile:
    """Unpickling this runs `open(target, "w")`: a hostile payload that leaves a trace."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.target, "w"))


def hostile_results(target: Path) -> dict[str, Any]:
    return {
        "verb_output": np.zeros((1, 97), np.float32),
        "noun_output": np.zeros((1, 300), np.float32),
        "narration_id": np.array(["P01_01_0"]),
        "payload": CreatesFile(target),
    }
