"""Decoding on the device (`data.decode=gpu`), run on the CPU device: the same samples as
the CPU path (frames, crop, flip, flow's u inversion), pixels within a grey level."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from epic_ar.data.config import DataConfig
from epic_ar.data.datamodule import EpicDataModule
from epic_ar.data.dataset import build_dataset
from epic_ar.data.device_decode import JpegBatch, collate_jpeg_samples, decode_on_device
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality
from epic_ar.synthetic.dataset import SyntheticConfig
from helpers.gulp_data import SyntheticData, make_synthetic_data

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=1,
    segments_per_video=3,
    frame_width=96,
    frame_height=64,
    min_frames=12,
    max_frames=16,
    layouts=("tar",),
    seed=5,
)
# (item, seed): every training segment, several draws each
KEYS = [(index % 2, 1000 + index) for index in range(6)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticData:
    return make_synthetic_data(tmp_path_factory.mktemp("device_decode"), DATA)


def datasets(synthetic: SyntheticData, modality: Modality) -> tuple[object, object]:
    """(CPU-path dataset, device-decode dataset) over the same archive frames, 3 snippets of
    48x48 crops."""
    kwargs = dict(frame_count=3, train=True, labels=synthetic.labels(modality),
                  input_size=48, modality=modality)  # fmt: skip
    source = synthetic.frames("tar", modality)
    return (build_dataset(source, **kwargs),  # type: ignore[arg-type]
            build_dataset(source, decode_on_device=True, **kwargs))  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_device_decoding_gives_the_cpu_path_samples(
    synthetic: SyntheticData, modality: Modality
) -> None:
    cpu, deferred = datasets(synthetic, modality)
    expected = torch.stack([cpu[key][0] for key in KEYS])  # type: ignore[index]
    batch = collate_jpeg_samples([deferred[key] for key in KEYS])  # type: ignore[index]
    assert isinstance(batch, JpegBatch) and len(batch.samples) == len(KEYS)
    assert any(sample.flip for sample in batch.samples)  # both flips are covered
    assert not all(sample.flip for sample in batch.samples)
    got = decode_on_device(batch, 48, grey=modality == "flow", device=torch.device("cpu"))
    channels = 3 if modality == "rgb" else 10
    assert got.shape == expected.shape == (len(KEYS), 3, channels, 48, 48)
    assert got.dtype == torch.uint8
    difference = (got.int() - expected.int()).abs()
    # The CPU path resizes in uint8 fixed point, the device path in float32: rounding only
    # (measured: 15% of RGB pixels one level apart).
    assert int(difference.max()) <= 1
    assert float((difference > 0).float().mean()) < 0.25
    assert batch.metadata["narration_id"] == [cpu[key][1]["narration_id"] for key in KEYS]  # type: ignore[index]


def test_the_data_module_decodes_training_batches_on_the_device(synthetic: SyntheticData) -> None:
    frames, labels = synthetic.frames("tar", "rgb"), synthetic.labels("rgb")
    data = DataConfig(frames_dir=str(frames), train_labels=str(labels), worker_count=0,
                      frame_count=3)  # fmt: skip
    data = replace(data, preprocessing=replace(data.preprocessing, input_size=48))
    batches = {}
    for decode in ("cpu", "gpu"):
        module = EpicDataModule(replace(data, decode=decode), modality="rgb", batch_size=3)
        batch = next(iter(module.train_dataloader()))
        assert isinstance(batch, JpegBatch) == (decode == "gpu")
        batches[decode] = module.on_after_batch_transfer(
            module.on_before_batch_transfer(batch, 0), 0
        )
    (ours, our_metadata), (theirs, their_metadata) = batches["gpu"], batches["cpu"]
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    assert ours.shape[1:] == (3, 3, 48, 48)
    pre = data.preprocessing
    level = (1 / 255 if pre.rescale else 1) / min(pre.std)  # one grey level, normalised
    assert float((ours - theirs).abs().max()) <= level * 1.001
    assert our_metadata["narration_id"] == their_metadata["narration_id"]


def test_videos_and_broken_frames_are_refused_in_one_line(synthetic: SyntheticData) -> None:
    with pytest.raises(EpicArError, match="needs JPEG frames: not with a videos_dir"):
        build_dataset(None, videos_dir=synthetic.root, labels=synthetic.labels("rgb"),
                      decode_on_device=True)  # fmt: skip
    _, deferred = datasets(synthetic, "rgb")
    sample, _ = deferred[KEYS[0]]  # type: ignore[index]
    broken = sample._replace(jpegs=(b"not a jpeg",) * len(sample.jpegs))
    with pytest.raises(EpicArError, match="decoding a batch on cpu"):
        decode_on_device(JpegBatch([broken], {}), 48, grey=False, device=torch.device("cpu"))


def test_bad_decode_setting_is_one_line() -> None:
    from epic_ar.training.run_config import parse_data_config

    with pytest.raises(EpicArError, match=r"data.decode: 'nvjpeg' is not one of 'cpu', 'gpu'"):
        parse_data_config({"decode": "nvjpeg"})
