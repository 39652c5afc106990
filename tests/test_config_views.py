"""The test views of a data config (`epic_ar.data.views.config_view_settings`): the values
it maps, its checks, and the same views as the datamodule's test datasets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from epic_ar.data.config import DataConfig, Preprocessing
from epic_ar.data.config import TestAugmentation as Rescale  # not a test class
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.views import ViewSettings, config_view_settings
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality
from epic_ar.synthetic.dataset import SyntheticConfig, generate_dataset

TINY = SyntheticConfig(
    participants=2,
    videos_per_participant=1,
    segments_per_video=3,
    frame_width=64,
    frame_height=48,
    min_frames=4,
    max_frames=8,
    layouts=("official",),
    seed=11,
)


def config(**values: object) -> DataConfig:
    """Sizes unlike the defaults, so that a value taken from the wrong key shows."""
    base = DataConfig(
        frame_count=3,
        preprocessing=Preprocessing(input_size=32, scale_size=40),
        test_augmentation=Rescale(rescale_size=48),
        fast_decode=True,
    )
    return replace(base, **values)  # type: ignore[arg-type]


def test_the_settings_are_the_config_s_values() -> None:
    data = config()
    assert config_view_settings(data, clips=2, crops=3) == ViewSettings(
        frame_count=3, snippet_length=1, input_size=32, scale_size=48, clips=2, crops=3,
        fast_decode=True,
    )  # fmt: skip
    flow = config_view_settings(data, modality="flow")
    assert (flow.snippet_length, flow.clips, flow.crops) == (5, 1, 1)  # flow's default L
    assert config_view_settings(config(segment_length=2), modality="flow").snippet_length == 2
    assert config_view_settings(data, frame_count=7).frame_count == 7
    assert config_view_settings(config(fast_decode=False)).fast_decode is False


@pytest.mark.parametrize(("clips", "crops"), [(0, 1), (1, 2)])
def test_view_counts_without_views_are_refused(clips: int, crops: int) -> None:
    with pytest.raises(EpicArError, match=r"clips must be at least 1 and crops 1 or 3 \(got"):
        config_view_settings(config(), clips=clips, crops=crops)


def test_a_rescale_size_below_the_input_size_is_refused_unless_unchecked() -> None:
    small = config(test_augmentation=Rescale(rescale_size=24))
    with pytest.raises(EpicArError) as refused:
        config_view_settings(small)
    assert str(refused.value) == "scale size 24 is smaller than input size 32"
    unchecked = config_view_settings(small, clips=0, check=False)
    assert (unchecked.scale_size, unchecked.input_size, unchecked.clips) == (24, 32, 0)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config_views")
    generate_dataset(root, TINY)
    return root


def archives(root: Path, **values: object) -> DataConfig:
    labels = str(root / "annotations" / "EPIC_100_validation.csv")
    return config(frames_dir=str(root / "frames_official"), val_labels=labels,
                  test_labels=labels, worker_count=0, **values)  # fmt: skip


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_the_datamodule_s_test_datasets_view_as_the_config_says(
    frames: Path, modality: Modality
) -> None:
    data = archives(frames)
    module = EpicDataModule(data, modality=modality, batch_size=1)
    dataset = module.build_dataset("val", train=False, clips=2, crops=3)
    expected = config_view_settings(data, clips=2, crops=3, modality=modality)
    assert dataset.view_settings == expected
    assert dataset[0][0].shape[:3] == (6, 3, 3 if modality == "rgb" else 10)  # [V, T, C]
    # the test split's own frame count, and an explicit one
    tsn = archives(frames, test_frame_count=5)
    module = EpicDataModule(tsn, modality=modality, batch_size=1)
    tested = module.build_dataset("test", train=False, clips=2, crops=3).view_settings
    assert tested == config_view_settings(tsn, clips=2, crops=3, modality=modality, frame_count=5)
    assert module.build_dataset("val", train=False, frame_count=4).view_settings.frame_count == 4


def test_training_datasets_keep_the_config_s_sizes_and_skip_the_scale_check(
    frames: Path,
) -> None:
    data = archives(frames, test_augmentation=Rescale(rescale_size=24))
    module = EpicDataModule(data, modality="flow", batch_size=1)
    trained = module.build_dataset("val", train=True)
    assert (trained.frame_count, trained.segment_length) == (3, 5)
    assert (trained.input_size, trained.scale_size, trained.fast_decode) == (32, 24, True)
    with pytest.raises(EpicArError, match=r"^scale size 24 is smaller than input size 32$"):
        module.build_dataset("val", train=False)
