"""RGB and flow datasets over gulp directories and frame archives; the DataModule."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from epic_ar.data import SeededShuffleSampler, build_dataset, decode, normalize
from epic_ar.data.config import DataConfig, Preprocessing
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.dataset import JoinedDataset, SegmentDataset
from epic_ar.data.decode import decode_frames
from epic_ar.data.sampling import sample_test_offsets, sample_train_offsets, snippet_frame_indices
from epic_ar.data.tar_index import INDEX_SUFFIX, tar_index
from epic_ar.data.transforms import crop_resize, invert_flow_u, sample_multiscale_crop
from epic_ar.errors import EpicArError
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.synthetic.dataset import SyntheticConfig
from helpers.gulp_data import SyntheticData, make_synthetic_data


def small(source: Path, modality: str, **options: Any) -> SegmentDataset:
    """A dataset with 32x32 outputs (the synthetic frames are 64x48)."""
    return build_dataset(source, modality, input_size=32, scale_size=48, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    data = make_synthetic_data(tmp_path_factory.mktemp("synthetic"))
    for modality in ("rgb", "flow"):
        for split in ("train", "validation"):
            job = GulpJob(
                data.frames("tar", modality),
                data.root / f"gulp_{modality}_{split}",
                data.labels(modality, split),
                modality,
            )
            run_gulp(job)
    return data


def gulp_dir(data: SyntheticData, modality: str, split: str = "train") -> Path:
    return data.root / f"gulp_{modality}_{split}"


@pytest.mark.parametrize("modality", ["rgb", "flow"])
@pytest.mark.parametrize("train", [True, False])
def test_gulp_tars_and_folders_give_identical_samples(
    data: SyntheticData, modality: str, train: bool
) -> None:
    labels = data.labels("rgb")  # archives: RGB numbering, converted for flow
    datasets = [
        small(gulp_dir(data, modality), modality, train=train),
        small(data.frames("tar", modality), modality, train=train, labels=labels),
        small(data.frames("folders", modality), modality, train=train, labels=labels),
    ]  # fmt: skip
    assert len({len(d) for d in datasets}) == 1
    channels = 10 if modality == "flow" else 3
    for index in range(len(datasets[0])):
        items = [d[(index, 1234 + index)] for d in datasets]
        frames, meta = items[0]
        assert frames.shape == (8, channels, 32, 32) and frames.dtype == torch.uint8
        for other_frames, other_meta in items[1:]:
            assert torch.equal(frames, other_frames)
            assert meta == other_meta
    assert set(meta) == {"narration_id", "video_id", "participant_id", "verb_class", "noun_class"}


@pytest.mark.parametrize("modality", ["rgb", "flow"])
@pytest.mark.parametrize("partial_decoding", [True, False])
@pytest.mark.parametrize("size", [32, 42])
def test_train_items_compose_sampling_crop_resize_and_flip(
    data: SyntheticData,
    modality: str,
    partial_decoding: bool,
    size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items equal the plain composition: full decode, crop, resize, flip (+ u inversion).
    Size 42 is one of the crop sizes of the 64x48 frames: some crops need no resize."""
    if not partial_decoding:
        monkeypatch.setattr(decode, "_decode_crop", None)
        monkeypatch.setattr(decode, "_split_quads", None)
        monkeypatch.setattr(decode, "_decode_crops_resized", None)
    dataset = build_dataset(
        gulp_dir(data, modality),
        modality,  # type: ignore[arg-type]
        train=True,
        input_size=size,
        scale_size=48,
    )
    length = dataset.segment_length
    flips, unresized = set(), 0
    for draw in range(24):
        index = draw % len(dataset)
        frames, _ = dataset[(index, 99 + draw)]
        row = int(dataset.rows[index])
        num_frames = int(dataset.table.num_frames[row])
        rng = np.random.default_rng(99 + draw)  # the draws, in the dataset's order
        offsets = sample_train_offsets(num_frames, 8, length, rng)
        indices = snippet_frame_indices(offsets, length, num_frames)
        jpegs = dataset.segments.read_frames(row, indices)
        assert isinstance(jpegs, list)  # a gulp directory gives JPEG bytes
        decoded = decode_frames(jpegs)
        height, width = decoded.shape[1:3]
        box = sample_multiscale_crop(width, height, dataset.scales, size, rng)
        flip = bool(rng.random() < 0.5)
        flips.add(flip)
        unresized += (box.width, box.height) == (size, size)
        expected = crop_resize(decoded, box, size, flip=flip)
        if flip and modality == "flow":
            invert_flow_u(expected)
        assert torch.equal(frames, expected.reshape(8, -1, size, size))
    assert flips == {False, True}
    if size == 42:
        assert unresized > 0


def test_flow_labels_already_converted(data: SyntheticData) -> None:
    converted = small(
        data.frames("tar", "flow"),
        "flow",
        train=False,
        labels=data.labels("flow"),
        label_frame_numbers="flow",
    )
    stored = small(gulp_dir(data, "flow"), "flow", train=False)
    assert torch.equal(converted[3][0], stored[3][0])
    upper = small(
        data.frames("tar", "flow"),
        "flow",
        train=False,
        labels=data.labels("flow"),
        label_frame_numbers="FLOW",
    )
    assert torch.equal(upper[3][0], stored[3][0])


@pytest.mark.parametrize("value", ["depth", "", None])
def test_label_frame_numbers_must_name_a_modality(data: SyntheticData, value: Any) -> None:
    with pytest.raises(EpicArError) as raised:
        small(
            data.frames("tar", "flow"), "flow", labels=data.labels("rgb"), label_frame_numbers=value
        )
    assert str(raised.value) == f"label_frame_numbers: {value!r} is not RGB or Flow"


def test_train_mode_is_random_and_seeded(data: SyntheticData) -> None:
    dataset = small(gulp_dir(data, "rgb"), "rgb", train=True)
    assert torch.equal(dataset[(0, 5)][0], dataset[(0, 5)][0])
    assert any(not torch.equal(dataset[(0, 5)][0], dataset[(0, s)][0]) for s in range(6, 12))
    test_mode = small(gulp_dir(data, "rgb"), "rgb", train=False)
    assert torch.equal(test_mode[0][0], test_mode[0][0])


def test_test_mode_equals_pil_decode_and_centre_crop(tmp_path: Path) -> None:
    config = SyntheticConfig(
        participants=2,
        videos_per_participant=1,
        segments_per_video=2,
        frame_width=300,
        frame_height=256,
        min_frames=4,
        max_frames=6,
        layouts=("tar",),
    )
    data = make_synthetic_data(tmp_path, config)
    dataset = build_dataset(
        data.frames("tar", "rgb"), "rgb", train=False, labels=data.labels("rgb")
    )
    frames, meta = dataset[0]
    row = dataset.table
    assert meta["narration_id"] == row.narration_id[0]
    # the frames the test offsets pick, decoded and cropped by PIL
    labels = pd.read_csv(data.labels("rgb")).set_index("narration_id").loc[meta["narration_id"]]
    count = int(labels.stop_frame - labels.start_frame + 1)
    archive = data.frames("tar", "rgb") / meta["participant_id"] / "rgb_frames"
    with tarfile.open(archive / f"{meta['video_id']}.tar") as tar:
        for t, offset in enumerate(sample_test_offsets(count, 8, 1).tolist()):
            member = tar.extractfile(f"./frame_{int(labels.start_frame) + offset:010d}.jpg")
            assert member is not None
            image = Image.open(io.BytesIO(member.read())).convert("RGB")
            left, top = round((300 - 224) / 2), round((256 - 224) / 2)
            expected = np.asarray(image.crop((left, top, left + 224, top + 224)))
            assert np.array_equal(frames[t].permute(1, 2, 0).numpy(), expected)


def test_test_time_clips_and_crops(data: SyntheticData) -> None:
    source = gulp_dir(data, "rgb", "validation")
    plain = build_dataset(source, "rgb", frame_count=3, train=False, scale_size=48,
                          input_size=40)  # fmt: skip
    views = build_dataset(source, "rgb", frame_count=3, train=False, scale_size=48,
                          input_size=40, clips=3, crops=3)  # fmt: skip
    for index in range(len(plain)):
        one, _ = plain[index]
        nine, _ = views[index]
        assert nine.shape == (9, 3, 3, 40, 40)
        assert torch.equal(nine[4], one)  # middle clip, centre crop: the default view
        row = plain.table
        frames = int(row.num_frames[plain.rows[index]])
        for clip, position in enumerate((1 / 6, 1 / 2, 5 / 6)):
            offsets = sample_test_offsets(frames, 3, 1, position)
            jpegs = plain.segments.read_frames(int(plain.rows[index]), offsets)
            assert isinstance(jpegs, list)  # a gulp directory gives JPEG bytes
            whole = torch.from_numpy(decode_frames(jpegs)).permute(0, 3, 1, 2)  # 64 x 48
            assert torch.equal(nine[3 * clip], whole[:, :, 4:44, 0:40])  # left
            assert torch.equal(nine[3 * clip + 2], whole[:, :, 4:44, 24:64])  # right
    with pytest.raises(EpicArError, match="crops 1 or 3"):
        build_dataset(source, "rgb", train=False, crops=2)


def test_test_split_without_labels(data: SyntheticData) -> None:
    labels = data.annotations / "EPIC_100_test_timestamps.csv"
    dataset = small(data.frames("tar", "rgb"), "rgb", train=False, labels=labels)
    _, meta = dataset[0]
    assert set(meta) == {"narration_id", "video_id", "participant_id"}
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch[0].shape == (4, 8, 3, 32, 32) and len(batch[1]["narration_id"]) == 4


def test_short_segments_repeat_frames(data: SyntheticData) -> None:
    dataset = small(
        gulp_dir(data, "flow"),
        "flow",
        frame_count=25,
        segment_length=5,
        train=True,
    )
    assert dataset.table.num_frames.min() < 5  # shorter than one snippet
    for index in range(len(dataset)):
        assert dataset[(index, index)][0].shape == (25, 10, 32, 32)


def test_loader_batches_do_not_depend_on_worker_count(data: SyntheticData) -> None:
    dataset = small(gulp_dir(data, "rgb"), "rgb", train=True)
    batches = []
    for workers in (0, 2):
        sampler = SeededShuffleSampler(len(dataset), seed=3)
        loader = DataLoader(dataset, batch_size=5, sampler=sampler, num_workers=workers)
        batches.append(next(iter(loader)))
    assert torch.equal(batches[0][0], batches[1][0])
    assert batches[0][1]["narration_id"] == batches[1][1]["narration_id"]
    assert batches[0][1]["verb_class"].dtype == torch.int64


def test_sampler_epochs_and_ranks() -> None:
    sampler = SeededShuffleSampler(10, seed=1)
    first = list(sampler)
    assert sorted(i for i, _ in first) == list(range(10))
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    ranks = [list(SeededShuffleSampler(10, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]
    assert {key for rank in ranks for key in rank} == set(first)  # padded with repeats
    for rank in (3, -1):
        with pytest.raises(EpicArError) as raised:
            SeededShuffleSampler(10, num_replicas=3, rank=rank)
        assert str(raised.value) == f"rank {rank} outside [0, 3)"


def test_joined_dataset(data: SyntheticData) -> None:
    parts = [
        small(gulp_dir(data, "rgb", split), "rgb", train=True) for split in ("train", "validation")
    ]
    joined = JoinedDataset(parts)
    assert len(joined) == len(parts[0]) + len(parts[1])
    assert torch.equal(joined[(len(parts[0]), 9)][0], parts[1][(0, 9)][0])
    with pytest.raises(IndexError):
        joined[len(joined)]


def test_tar_index_is_cached_and_rebuilt_when_stale(tmp_path: Path) -> None:
    archive = tmp_path / "P01_01.tar"
    with tarfile.open(archive, "w") as tar:
        for number in (1, 2, 4):
            payload = f"frame {number}".encode()
            info = tarfile.TarInfo(f"./frame_{number:010d}.jpg")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    table = tar_index(archive)
    cache = archive.with_name(archive.name + INDEX_SUFFIX)
    assert cache.is_file() and table.shape == (1, 5, 2)
    assert table[0, 3].tolist() == [-1, -1]  # frame 3 missing
    offset, size = table[0, 4]
    assert archive.read_bytes()[offset : offset + size] == b"frame 4"
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("./frame_0000000005.jpg")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"5"))
    assert tar_index(archive).shape == (1, 6, 2)  # archive changed: indexed again
    elsewhere = tar_index(archive, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob(f"*{INDEX_SUFFIX}"))) == 1
    assert np.array_equal(elsewhere, tar_index(archive))


def test_bad_sources_are_named(data: SyntheticData, tmp_path: Path) -> None:
    with pytest.raises(EpicArError, match="not a gulp directory; to read frame archives"):
        build_dataset(data.frames("tar", "rgb"), "rgb")
    with pytest.raises(EpicArError, match="holds rgb frames, not flow"):
        build_dataset(gulp_dir(data, "rgb"), "flow")
    with pytest.raises(EpicArError, match=r"segment\(s\) of .* are not stored"):
        build_dataset(gulp_dir(data, "rgb"), "rgb", labels=data.labels("rgb", "validation"))
    with pytest.raises(EpicArError, match="unknown modality"):
        small(gulp_dir(data, "rgb"), "depth")


def test_a_missing_frame_names_segment_and_member(data: SyntheticData, tmp_path: Path) -> None:
    labels = pd.read_csv(data.labels("rgb"))
    labels["stop_frame"] = labels["stop_frame"].where(labels.index != 0, 100_000)
    bad_labels = tmp_path / "labels.csv"
    labels.to_csv(bad_labels, index=False)
    dataset = build_dataset(data.frames("tar", "rgb"), "rgb", train=False, labels=bad_labels)
    segment = str(labels["narration_id"].iloc[0])
    with pytest.raises(EpicArError, match=f"segment {segment}: missing frame .*\\.tar:frame_"):
        dataset[0]


def data_config(data: SyntheticData, **overrides: object) -> DataConfig:
    config = DataConfig(
        train_gulp_dir=str(gulp_dir(data, "rgb")),
        val_gulp_dir=str(gulp_dir(data, "rgb", "validation")),
        test_gulp_dir=str(gulp_dir(data, "rgb", "validation")),
        worker_count=0,
        preprocessing=Preprocessing(input_size=32),
    )
    config.test_augmentation.rescale_size = 48
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def test_datamodule_loaders_and_normalisation(data: SyntheticData) -> None:
    module = EpicDataModule(data_config(data, test_frame_count=4), modality="rgb", batch_size=3)
    frames, meta = next(iter(module.train_dataloader()))
    assert frames.shape == (3, 8, 3, 32, 32) and frames.dtype == torch.uint8
    normalised, same_meta = module.on_after_batch_transfer((frames, meta), 0)
    pre = module.data.preprocessing
    assert torch.equal(normalised, normalize(frames, pre.mean, pre.std))
    assert same_meta is meta
    val = next(iter(module.val_dataloader()))[0]
    assert val.shape == (3, 8, 3, 32, 32)
    assert next(iter(module.test_dataloader()))[0].shape == (3, 4, 3, 32, 32)


def test_datamodule_subsets_and_train_on_val(data: SyntheticData) -> None:
    module = EpicDataModule(data_config(data, participants=["P01"], max_segments=3), modality="rgb",
                            batch_size=2)  # fmt: skip
    train = module.dataset("train", train=True)
    assert len(train) == 3 and set(train.table.participant_id[train.rows]) == {"P01"}
    joined = EpicDataModule(data_config(data, train_on_val=True), modality="rgb", batch_size=2)
    sizes = len(joined.dataset("train", train=True)) + len(joined.dataset("val", train=True))
    assert len(joined.train_dataloader().dataset) == sizes  # type: ignore[arg-type]
    with pytest.raises(EpicArError, match="no segments left"):
        EpicDataModule(data_config(data, participants=["P99"]), modality="rgb",
                       batch_size=2).dataset("train", train=True)  # fmt: skip
    with pytest.raises(EpicArError, match="unknown modality"):
        EpicDataModule(data_config(data), modality="audio", batch_size=2)  # type: ignore[arg-type]


def test_datamodule_reads_archives(data: SyntheticData) -> None:
    config = data_config(
        data,
        frames_dir=str(data.frames("tar", "flow")),
        train_labels=str(data.labels("rgb")),
        val_labels=str(data.labels("rgb", "validation")),
        segment_length=5,
    )
    config.preprocessing.mean, config.preprocessing.std = [0.5], [0.226]
    module = EpicDataModule(config, modality="flow", batch_size=2)
    frames, _ = next(iter(module.val_dataloader()))
    assert frames.shape == (2, 8, 10, 32, 32)


def test_datamodule_defaults_to_the_modalitys_snippet_length(data: SyntheticData) -> None:
    """No `segment_length`: 5 flow pairs (10 channels) per frame, as the model expects."""
    config = data_config(
        data,
        frames_dir=str(data.frames("tar", "flow")),
        train_labels=str(data.labels("flow")),
        val_labels=str(data.labels("flow", "validation")),
        label_frame_numbers="flow",
    )
    assert config.segment_length is None
    config.preprocessing.mean, config.preprocessing.std = [0.5], [0.226]
    module = EpicDataModule(config, modality="flow", batch_size=2)
    frames, _ = next(iter(module.val_dataloader()))
    assert frames.shape == (2, 8, 10, 32, 32)
    stored = small(gulp_dir(data, "flow", "validation"), "flow", train=False, segment_length=5)
    assert torch.equal(frames[0], stored[0][0])
    with pytest.raises(EpicArError, match=r"data\.test_labels is not"):
        module.test_dataloader()
