"""TSM's temporal shift: part of the channels of each frame move one frame along time.

With `fold = C // shift_div`: channels [0, fold) of frame t take frame t+1's values,
channels [fold, 2*fold) take frame t-1's, zeros at the ends; the rest are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _shift(x: torch.Tensor, fold: int, backward: bool) -> torch.Tensor:
    """x: [N, T, C, H, W]. Forward: channels [0, fold) from t+1, [fold, 2 fold) from t-1.
    `backward` moves the other way (the gradient of the forward shift). Every output value
    is written once into an uninitialised tensor: no zero fill, no intermediate copies."""
    out = torch.empty_like(x)
    first, second = (slice(0, fold), slice(fold, 2 * fold))
    if backward:
        first, second = second, first
    out[:, :-1, first] = x[:, 1:, first]
    out[:, -1:, first] = 0
    out[:, 1:, second] = x[:, :-1, second]
    out[:, :1, second] = 0
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out


def shift_by_concatenation(x: torch.Tensor, fold: int) -> torch.Tensor:
    """The forward shift of x [N, T, C, H, W] built from slices and concatenations: what
    exported graphs use, where the in-place writes of `_shift` would become ScatterND,
    which some runtimes (TensorRT versions) do not support."""
    ahead, behind = x[:, 1:, :fold], x[:, :-1, fold : 2 * fold]
    return torch.cat(
        [
            torch.cat([ahead, torch.zeros_like(x[:, :1, :fold])], dim=1),
            torch.cat([torch.zeros_like(x[:, :1, fold : 2 * fold]), behind], dim=1),
            x[:, :, 2 * fold :],
        ],
        dim=2,
    )


class _TemporalShift(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fold: int) -> torch.Tensor:
        ctx.fold = fold
        return _shift(x, fold, backward=False)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _shift(grad, ctx.fold, backward=True), None


def temporal_shift(x: torch.Tensor, clip_frames: int, shift_div: int = 8) -> torch.Tensor:
    """Shift [N*T, C, H, W] features (N clips of T = `clip_frames` frames); same shape out.

    (The TSM paper and the original code call T the number of "segments".)
    """
    frames, channels = x.shape[:2]
    if frames % clip_frames:
        raise ValueError(f"{frames} frames is not a multiple of {clip_frames} frames per clip")
    clips = x.reshape(frames // clip_frames, clip_frames, *x.shape[1:])
    if torch.compiler.is_exporting():
        return shift_by_concatenation(clips, channels // shift_div).reshape(x.shape)
    shifted: torch.Tensor = _TemporalShift.apply(clips, channels // shift_div)
    return shifted.reshape(x.shape)


def reference_temporal_shift(x: torch.Tensor, clip_frames: int, shift_div: int = 8) -> torch.Tensor:
    """The original's formulation of `temporal_shift` (a zero tensor and three slice
    copies, autograd through the copies): the reference it is tested and timed against."""
    frames, channels, height, width = x.shape
    clips = x.view(frames // clip_frames, clip_frames, channels, height, width)
    fold = channels // shift_div
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = clips[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = clips[:, :, 2 * fold :]
    return out.view(frames, channels, height, width)


class TemporalShift(nn.Module):
    """Shifts the input, then applies `net` (the wrapped conv: its weights are `net.*`)."""

    def __init__(self, net: nn.Module, clip_frames: int, shift_div: int = 8):
        super().__init__()
        self.net = net
        self.clip_frames = clip_frames
        self.shift_div = shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.clip_frames, self.shift_div))  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"clip_frames={self.clip_frames}, shift_div={self.shift_div}"


class TemporalPool(nn.Module):
    """Halves the number of frames (max over 3, stride 2 in time) before `net`."""

    def __init__(self, net: nn.Module, clip_frames: int):
        super().__init__()
        self.net = net
        self.clip_frames = clip_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, channels, height, width = x.shape
        clips = x.view(frames // self.clip_frames, self.clip_frames, channels, height, width)
        pooled = nn.functional.max_pool3d(
            clips.transpose(1, 2), kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)
        )
        return self.net(pooled.transpose(1, 2).reshape(-1, channels, height, width))  # type: ignore[no-any-return]


def insert_temporal_shift(
    resnet: nn.Module, clip_frames: int, shift_div: int, temporal_pool: bool = False
) -> None:
    """Wrap `conv1` of every residual block of layer1-4 in a TemporalShift (in place), for
    clips of T = `clip_frames` frames; with `temporal_pool`, halve the frames before layer2
    (layers 2-4 see T/2)."""
    for index, name in enumerate(("layer1", "layer2", "layer3", "layer4")):
        layer_frames = clip_frames // 2 if temporal_pool and index > 0 else clip_frames
        for block in getattr(resnet, name):
            block.conv1 = TemporalShift(block.conv1, layer_frames, shift_div)
    if temporal_pool:
        layer2 = resnet.get_submodule("layer2")
        resnet.register_module("layer2", TemporalPool(layer2, clip_frames))
