"""The six published EPIC-KITCHENS-100 checkpoints: where they are, fetching them."""

from __future__ import annotations

from pathlib import Path

from epic_ar.errors import EpicArError
from epic_ar.fileio.download import download
from epic_ar.modality import config_spelling, parse_modality
from epic_ar.models.checkpoint import load_checkpoint

# From the original project's README (TSN / TRN / TSM, RGB and flow; 8 frames each)
PUBLISHED_URLS = {
    "tsn_rgb": "https://www.dropbox.com/s/4i99mzddk95edyq/tsn_rgb.ckpt?dl=1",
    "tsn_flow": "https://www.dropbox.com/s/res0i1ns7v30g9y/tsn_flow.ckpt?dl=1",
    "trn_rgb": "https://www.dropbox.com/s/l1cs7kozz3f03r4/trn_rgb.ckpt?dl=1",
    "trn_flow": "https://www.dropbox.com/s/4rehj36vyip82mu/trn_flow.ckpt?dl=1",
    "tsm_rgb": "https://www.dropbox.com/s/5yxnzubch7b6niu/tsm_rgb.ckpt?dl=1",
    "tsm_flow": "https://www.dropbox.com/s/8x9hh404k641rqj/tsm_flow.ckpt?dl=1",
}

_MODEL_TYPES = {"tsn": "TSN", "trn": "MTRN", "tsm": "TSM"}  # name prefix -> model.type


def download_published(
    name: str, directory: Path, *, url: str | None = None, force: bool = False
) -> Path:
    """Fetch published checkpoint `name` (e.g. "tsm_rgb") into `directory/<name>.ckpt`,
    check that it loads (strictly, without trusting it), then move it into place.

    `url` replaces the published address (a mirror, or a file:// URL).
    """
    if name not in PUBLISHED_URLS:
        raise EpicArError(f"unknown checkpoint {name!r}; choose from {sorted(PUBLISHED_URLS)}")
    # load_checkpoint refuses files that are not what they should be
    return download(
        url or PUBLISHED_URLS[name],
        directory / f"{name}.ckpt",
        force=force,
        check=lambda path: check_published_checkpoint(path, name),
    )


def check_published_checkpoint(path: Path, name: str) -> None:
    """Refuse `path` unless it loads strictly (without trusting it) into the model that
    `name` (e.g. "tsm_flow") stands for: that architecture, that modality."""
    model, _ = load_checkpoint(path)
    kind, modality = name.split("_")
    expected = (_MODEL_TYPES[kind], config_spelling(parse_modality(modality, "checkpoint name")))
    found = (model.config.type, config_spelling(model.spec.modality))
    if found != expected:
        raise EpicArError(
            f"{path}: holds a {' '.join(found)} model, not the {' '.join(expected)} "
            f"model that {name} names"
        )
