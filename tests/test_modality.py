"""The one modality type: reading the configs' spelling, writing it back, its defaults."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epic_ar.data.sampling import default_snippet_length
from epic_ar.errors import EpicArError
from epic_ar.modality import MODALITIES, config_spelling, parse_modality
from epic_ar.models import InputSpec
from epic_ar.models.checkpoint import input_spec
from epic_ar.training.run_config import parse_run_config


def case_variants(word: str) -> st.SearchStrategy[str]:
    """`word` with each letter upper or lower case, independently."""
    letters = [st.sampled_from(sorted({c.lower(), c.upper()})) for c in word]
    return st.tuples(*letters).map("".join)


@given(st.sampled_from(["rgb", "flow"]).flatmap(lambda w: st.tuples(st.just(w), case_variants(w))))
def test_any_case_of_rgb_or_flow_is_read(expected_and_spelling: tuple[str, str]) -> None:
    expected, spelling = expected_and_spelling
    assert parse_modality(spelling, "modality:") == expected


@given(st.text(max_size=8).filter(lambda s: s.lower() not in ("rgb", "flow")))
def test_other_text_is_refused_naming_the_source(value: str) -> None:
    with pytest.raises(EpicArError) as raised:
        parse_modality(value, "somewhere: modality")
    assert str(raised.value) == f"somewhere: modality {value!r} is not RGB or Flow"


@pytest.mark.parametrize("value", [None, 3, ["RGB"], b"RGB", " RGB", "RGB "])
def test_non_words_are_refused(value: Any) -> None:
    with pytest.raises(EpicArError, match=r"^modality: .* is not RGB or Flow$"):
        parse_modality(value, "modality:")


def test_config_spelling_is_the_originals_and_reads_back() -> None:
    assert MODALITIES == ("rgb", "flow")
    assert [config_spelling(m) for m in MODALITIES] == ["RGB", "Flow"]
    for modality in MODALITIES:
        assert parse_modality(config_spelling(modality), "x") == modality


def test_default_snippet_length() -> None:
    assert default_snippet_length("rgb") == 1
    assert default_snippet_length("flow") == 5


def test_checkpoint_configs_are_read_in_the_originals_spelling_only() -> None:
    flow = input_spec({"modality": "Flow", "data": {"frame_count": 4}})
    assert (flow.modality, flow.frame_count, flow.segment_length, flow.channels) == (
        "flow", 4, 5, 10,
    )  # fmt: skip
    rgb = input_spec({"modality": "RGB", "data": {"segment_length": 2}})
    assert (rgb.modality, rgb.frame_count, rgb.segment_length, rgb.channels) == ("rgb", 8, 2, 6)
    with pytest.raises(EpicArError, match=r"^config: modality None is not RGB or Flow$"):
        input_spec({"data": {}})
    # The original refuses any other spelling in a config, and so do we.
    for spelling in ("rgb", "flow", "FLOW", "Rgb"):
        with pytest.raises(EpicArError, match=rf"^config: modality '{spelling}' is not RGB"):
            input_spec({"modality": spelling, "data": {}})


def test_input_specs_take_the_configs_spelling_too() -> None:
    """A model built for "RGB" must take 3 channels per frame, not flow's 2."""
    rgb = InputSpec("RGB", frame_count=4)  # type: ignore[arg-type]
    assert (rgb.modality, rgb.channels) == ("rgb", 3)
    flow = InputSpec("Flow", frame_count=4, segment_length=5)  # type: ignore[arg-type]
    assert (flow.modality, flow.channels) == ("flow", 10)
    with pytest.raises(EpicArError, match=r"^InputSpec: modality 'depth' is not RGB or Flow$"):
        InputSpec("depth")  # type: ignore[arg-type]


def test_run_configs_keep_the_originals_spelling() -> None:
    base: dict[str, Any] = {"model": {"type": "TSN"}, "learning": {"batch_size": 2}}
    for given_spelling, modality, stored in [("RGB", "rgb", "RGB"), ("Flow", "flow", "Flow")]:
        run = parse_run_config({**base, "modality": given_spelling})
        assert run.modality == modality and run.input_spec.modality == modality
        assert run.stored["modality"] == stored  # what checkpoints keep
    for refused in ("depth", "rgb", "flow"):
        with pytest.raises(EpicArError, match=rf"^modality: '{refused}' is not RGB or Flow$"):
            parse_run_config({**base, "modality": refused})


def test_input_specs_default_to_the_modalitys_snippet_length() -> None:
    """Flow's default is 5 u/v pairs per input frame (10 channels), as the configs set it."""
    flow, rgb = InputSpec("flow"), InputSpec("rgb", frame_count=4)
    assert (flow.frame_count, flow.segment_length, flow.channels) == (8, 5, 10)
    assert (rgb.frame_count, rgb.segment_length, rgb.channels) == (4, 1, 3)
    # Given lengths are kept, whatever the modality.
    assert InputSpec("flow", 8, 1).channels == 2
    assert InputSpec("rgb", 8, 5).channels == 15


def test_run_configs_without_a_segment_length_take_the_modalitys() -> None:
    base: dict[str, Any] = {"model": {"type": "TSN"}, "learning": {"batch_size": 2}}
    flow = parse_run_config({**base, "modality": "Flow"})
    assert flow.data.segment_length is None
    assert (flow.input_spec.segment_length, flow.input_spec.channels) == (5, 10)
    rgb = parse_run_config({**base, "modality": "RGB"})
    assert (rgb.input_spec.segment_length, rgb.input_spec.channels) == (1, 3)
    set_to_one = parse_run_config({**base, "modality": "Flow", "data": {"segment_length": 1}})
    assert (set_to_one.input_spec.segment_length, set_to_one.input_spec.channels) == (1, 2)
    for bad in (0, "5", 2.5):
        with pytest.raises(EpicArError) as raised:
            parse_run_config({**base, "modality": "Flow", "data": {"segment_length": bad}})
        assert str(raised.value) == f"data.segment_length: {bad!r} is not an integer >= 1"


def test_label_frame_numbers_must_name_a_modality() -> None:
    base: dict[str, Any] = {
        "modality": "Flow",
        "model": {"type": "TSN"},
        "learning": {"batch_size": 2},
    }
    assert parse_run_config(base).data.label_frame_numbers == "rgb"
    for given_value, read in [("rgb", "rgb"), ("flow", "flow"), ("FLOW", "flow"), ("RGB", "rgb")]:
        run = parse_run_config({**base, "data": {"label_frame_numbers": given_value}})
        assert run.data.label_frame_numbers == read
    for bad in ("depth", "", None, 5):
        with pytest.raises(EpicArError) as raised:
            parse_run_config({**base, "data": {"label_frame_numbers": bad}})
        assert str(raised.value) == f"data.label_frame_numbers: {bad!r} is not RGB or Flow"
