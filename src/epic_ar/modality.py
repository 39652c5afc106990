"""The two input modalities, spelt one way in code: "rgb" and "flow".

Run configs and checkpoints spell them "RGB" and "Flow" (the original project's YAML and
stored `hyper_parameters`, which stay as they are so that checkpoints load in both projects).
`config_modality` reads exactly that spelling where a config is read (as the original
does); `config_spelling` writes it where the original's form is wanted (configs, results
files, the Kinetics weights' URLs). `parse_modality` reads a Python caller's argument, in
any case.
"""

from __future__ import annotations

from typing import Literal

from epic_ar.errors import EpicArError

Modality = Literal["rgb", "flow"]
MODALITIES: tuple[Modality, ...] = ("rgb", "flow")
_CONFIG_SPELLINGS: dict[Modality, str] = {"rgb": "RGB", "flow": "Flow"}


def parse_modality(value: object, source: str) -> Modality:
    """The modality `value` names: "RGB" or "Flow", in any case ("rgb", "FLOW", ...).

    Raises:
        EpicArError: `value` is anything else; the message starts with `source`, which says
            where the value came from (e.g. "modality:" for a run config's key), then
            "'<value>' is not RGB or Flow".
    """
    if isinstance(value, str):
        lowered = value.lower()
        for modality in MODALITIES:
            if lowered == modality:
                return modality
    raise EpicArError(f"{source} {value!r} is not RGB or Flow")


def config_modality(value: object, source: str) -> Modality:
    """The modality a run config or checkpoint names: exactly "RGB" or "Flow", as the
    original writes and reads them.

    Raises:
        EpicArError: anything else, "<source> '<value>' is not RGB or Flow".
    """
    for modality, spelling in _CONFIG_SPELLINGS.items():
        if value == spelling:
            return modality
    raise EpicArError(f"{source} {value!r} is not RGB or Flow")


def config_spelling(modality: Modality) -> str:
    """How the original's configs and checkpoints spell `modality`: "RGB" or "Flow"."""
    return _CONFIG_SPELLINGS[modality]
