"""The original's Lightning 0.9 trainer arguments in today's names (the run config checks
them afterwards: see test_run_config)."""

from __future__ import annotations

import pytest

from epic_ar.compat.lightning_config import translate_trainer_arguments
from epic_ar.errors import EpicArError


def test_trainer_arguments_of_the_original_command_lines_are_translated() -> None:
    given = {"gpus": 2, "accelerator": "cpu", "resume_from_checkpoint": 7, "bogus": 1}
    translated, resume = translate_trainer_arguments(given)
    # an explicit accelerator wins over the GPUs `gpus` implies; unknown keys pass (unchecked)
    assert translated == {"accelerator": "cpu", "bogus": 1, "devices": 2}
    assert resume == "7"
    assert given["gpus"] == 2 and "resume_from_checkpoint" in given  # the input is kept
    translated, resume = translate_trainer_arguments({"gpus": 1, "distributed_backend": "ddp"})
    assert translated == {"strategy": "ddp", "devices": 1, "accelerator": "gpu"}
    assert resume is None
    assert translate_trainer_arguments({"devices": 3}) == ({"devices": 3}, None)
    with pytest.raises(EpicArError) as caught:
        translate_trainer_arguments({"gpus": 2, "devices": [0, 1]})
    assert str(caught.value) == "trainer: set trainer.devices or trainer.gpus, not both"
