"""`epic-ar show`: contact sheets, clips, flow colours, segment choice and its errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from epic_ar.errors import EpicArError
from epic_ar.gulp.ingest import GulpJob, run_gulp
from epic_ar.synthetic.dataset import SyntheticConfig
from epic_ar.visualize.flow_colours import flow_to_colour
from epic_ar.visualize.show import CAPTION_HEIGHT, FRAME_HEIGHT, MARGIN, ShowOptions, show
from helpers.bad_input import one_error_line, run
from helpers.cli import RunCli
from helpers.gulp_data import SyntheticData, make_synthetic_data

DATA = SyntheticConfig(
    participants=2,
    videos_per_participant=1,
    segments_per_video=5,
    frame_width=64,
    frame_height=48,
    min_frames=6,
    max_frames=12,
    layouts=("tar",),
    seed=5,
)
FRAME_WIDTH_ON_SHEET = round(64 * FRAME_HEIGHT / 48)


@pytest.fixture(scope="module")
def gulped(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, Path]:
    root = tmp_path_factory.mktemp("show")
    data = make_synthetic_data(root, DATA)
    for modality in ("rgb", "flow"):
        labels = data.labels(modality, "validation")
        run_gulp(GulpJob(data.frames("tar", modality), root / f"{modality}_val", labels, modality))
    return data, root


def sheet_height(rows: int) -> int:
    return MARGIN + rows * (CAPTION_HEIGHT + FRAME_HEIGHT + MARGIN)


def test_flow_colours_follow_direction_and_magnitude() -> None:
    u = np.array([[148, 128, 128, 128]], dtype=np.uint8)
    v = np.array([[128, 148, 128, 108]], dtype=np.uint8)
    colours = flow_to_colour(u, v, full_scale=20).tolist()[0]
    assert colours[0] == [255, 0, 0]  # right: red
    assert colours[1] == [128, 255, 0]  # down: hue 1/4
    assert colours[2] == [0, 0, 0]  # still: black
    assert colours[3] == [128, 0, 255]  # up: hue 3/4
    half = flow_to_colour(np.array([[138]], np.uint8), np.array([[128]], np.uint8), full_scale=20)
    assert half.tolist() == [[[128, 0, 0]]]


def test_rgb_contact_sheet_has_a_row_per_segment(gulped: tuple[SyntheticData, Path]) -> None:
    _, root = gulped
    out = root / "rgb.png"
    summary = show(ShowOptions(root / "rgb_val", out, frame_count=5, force=True))
    image = Image.open(out)
    assert image.height == sheet_height(4)  # the first 4 segments
    assert image.width >= MARGIN + 5 * (FRAME_WIDTH_ON_SHEET + MARGIN)
    assert "4 rgb segments x 5 test-mode frames" in summary
    # a frame cell holds the segment's picture: not the white background
    pixels = np.asarray(image)
    cell = pixels[MARGIN + CAPTION_HEIGHT : MARGIN + CAPTION_HEIGHT + FRAME_HEIGHT, MARGIN:20]
    assert cell.std() > 5 and cell.mean() < 250


def test_flow_sheets_in_colour_and_as_uv(gulped: tuple[SyntheticData, Path]) -> None:
    data, root = gulped
    ids = list(pd.read_csv(data.labels("flow", "validation")).narration_id[:2])
    colour = show(ShowOptions(root / "flow_val", root / "c.png", ids=ids, frame_count=3))
    assert "2 flow segments" in colour  # modality found in the gulp directory
    uv = root / "uv.png"
    show(ShowOptions(root / "flow_val", uv, ids=ids, frame_count=3, flow_view="uv"))
    width = Image.open(root / "c.png").width
    assert Image.open(uv).width > 1.8 * (width - MARGIN)  # u and v side by side
    pixels = np.asarray(Image.open(uv))
    strip = pixels[MARGIN + CAPTION_HEIGHT : MARGIN + CAPTION_HEIGHT + FRAME_HEIGHT, MARGIN:50]
    assert (strip[..., 0] == strip[..., 1]).all()  # grey


def test_training_inputs_are_square_crops(gulped: tuple[SyntheticData, Path]) -> None:
    _, root = gulped
    out = root / "input.png"
    show(ShowOptions(root / "rgb_val", out, random_count=2, as_input=True, input_size=32))
    image = Image.open(out)
    assert image.height == sheet_height(2)
    # eight 128 x 128 cells (square inputs scaled up)
    assert image.width >= MARGIN + 8 * (FRAME_HEIGHT + MARGIN)
    again = root / "again.png"
    show(ShowOptions(root / "rgb_val", again, random_count=2, as_input=True, input_size=32))
    assert out.read_bytes() == again.read_bytes()  # seeded


def test_clips_play_every_frame(gulped: tuple[SyntheticData, Path]) -> None:
    data, root = gulped
    labels = data.labels("rgb", "validation")
    first = pd.read_csv(labels).iloc[0]
    frames = int(first.stop_frame - first.start_frame + 1)
    gif = root / "clip.gif"
    archives = ShowOptions(data.frames("tar", "rgb"), gif, labels=labels, ids=[first.narration_id])
    show(archives)
    with Image.open(gif) as image:
        assert image.size == (64, 48)
        durations = []  # (Pillow merges repeated frames, adding up their durations)
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
    assert sum(durations) == 20 * frames  # every frame, at 50 fps
    mp4 = root / "clip.mp4"
    show(dataclasses.replace(archives, out=mp4, fps=25))
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        assert len(decoded) == frames and (stream.width, stream.height) == (64, 48)
        assert stream.average_rate == 25


def test_choice_errors_name_what_is_wrong(gulped: tuple[SyntheticData, Path]) -> None:
    data, root = gulped
    known = str(pd.read_csv(data.labels("rgb", "validation")).narration_id[0])
    typo = known.lower()
    with pytest.raises(EpicArError, match=rf"no segment '{typo}'; did you mean {known}"):
        show(ShowOptions(root / "rgb_val", root / "x.png", ids=[typo]))
    with pytest.raises(EpicArError, match="a clip plays one segment"):
        show(ShowOptions(root / "rgb_val", root / "x.gif", random_count=2))
    with pytest.raises(EpicArError, match="not a gulp directory; to read frame archives"):
        show(ShowOptions(data.frames("tar", "rgb"), root / "x.png"))
    with pytest.raises(EpicArError, match=r"write a \.png"):
        show(ShowOptions(root / "rgb_val", root / "x.jpg"))
    assert not any(root.glob("x.*"))


def test_messages_name_parameters_and_the_command_its_flags(
    capsys: pytest.CaptureFixture[str], gulped: tuple[SyntheticData, Path]
) -> None:
    data, root = gulped
    archives, clip = data.frames("tar", "rgb"), root / "two.gif"
    with pytest.raises(EpicArError) as refused:
        show(ShowOptions(root / "rgb_val", clip, random_count=2))
    assert str(refused.value) == f"{clip}: a clip plays one segment; pass one id in ids"
    status, _, err = run(capsys, "show", root / "rgb_val", clip, "--random", "2")
    assert status == 1
    assert one_error_line(err, "show") == f"{clip}: a clip plays one segment; pass one --ids"
    with pytest.raises(EpicArError) as refused:
        show(ShowOptions(archives, root / "x.png"))
    reason = f"{archives}: not a gulp directory; to read frame archives, pass"
    assert str(refused.value) == f"{reason} labels"
    status, _, err = run(capsys, "show", archives, root / "x.png")
    assert status == 1 and one_error_line(err, "show") == f"{reason} --labels"
    assert not any(root.glob("x.*")) and not clip.exists()


def test_show_command(run_cli: RunCli, gulped: tuple[SyntheticData, Path]) -> None:
    _, root = gulped
    out = root / "cli.png"
    done = run_cli("show", root / "rgb_val", out, "--random", "1", "--frames", "2")
    assert done.returncode == 0, done.stderr
    assert Image.open(out).height == sheet_height(1)
    assert str(out) in done.stdout
    refused = run_cli("show", root / "rgb_val", out, "--random", "1")
    assert refused.returncode == 1 and "--force" in refused.stderr
