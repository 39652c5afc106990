"""A re-creation of the original project's training data pipeline, as the loader baseline.

What the original does per training sample (its `TsnDataset` over `EpicVideoDataset` with
the `train_transform` of its DataModule):

1. TSN offsets drawn with numpy's global generator;
2. one gulpio2 read per frame (`gulp_dir[id, slice(i, i + 1)]`; flow: one per u/v pair),
   decoded by gulpio2, each frame wrapped in a PIL image (`convert("RGB")` / `("L")`);
3. multi-scale crop (13 fixed offsets) and resize to 224x224 with PIL, per image;
4. random horizontal flip with PIL (flow: u images inverted with `ImageOps.invert`);
5. stack into an [H, W, T*C] array, to a float tensor / 255, normalise channel by channel,
   reshape to [T, C, H, W].

Written for this benchmark from the behaviour described above (not the original's code).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from epic_ar.data.sampling import sample_train_offsets
from epic_ar.data.transforms import fixed_crop_offsets, multiscale_crop_sizes


class OriginalStyleTrainDataset(torch.utils.data.Dataset[tuple[torch.Tensor, dict[str, Any]]]):
    def __init__(
        self,
        gulp_path: str,
        *,
        flow: bool,
        frame_count: int = 8,
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
    ):
        from gulpio2 import GulpDirectory

        self.gulp = GulpDirectory(gulp_path)
        self.flow = flow
        self.ids = sorted(self.gulp.merged_meta_dict)
        self.frame_count = frame_count
        self.snippet = 5 if flow else 1
        self.scales = [1, 0.875, 0.75] if flow else [1, 0.875, 0.75, 0.66]
        self.mean, self.std = (list(mean), list(std)) if not flow else ([0.5], [0.226])

    def __len__(self) -> int:
        return len(self.ids)

    def _images(self, segment: str, index: int) -> list[Image.Image]:
        if self.flow:
            pair = self.gulp[segment, slice(index * 2, index * 2 + 2)][0]
            return [Image.fromarray(frame).convert("L") for frame in pair]
        frame = self.gulp[segment, slice(index, index + 1)][0][0]
        return [Image.fromarray(frame).convert("RGB")]

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, Any]]:
        segment = self.ids[item]
        count = len(self.gulp.merged_meta_dict[segment]["frame_info"]) // (2 if self.flow else 1)
        offsets = sample_train_offsets(
            count, self.frame_count, self.snippet, np.random.default_rng(random.getrandbits(32))
        )
        images: list[Image.Image] = []
        for offset in offsets.tolist():
            for step in range(self.snippet):
                images += self._images(segment, min(offset + step, count - 1))
        # multi-scale crop, then resize each image with PIL
        width, height = images[0].size
        crop_w, crop_h = random.choice(multiscale_crop_sizes(width, height, self.scales, 224))
        x, y = random.choice(fixed_crop_offsets(width, height, crop_w, crop_h))
        images = [
            image.crop((x, y, x + crop_w, y + crop_h)).resize((224, 224), Image.Resampling.BILINEAR)
            for image in images
        ]
        if random.random() < 0.5:
            images = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for image in images]
            if self.flow:
                images = [
                    ImageOps.invert(image) if i % 2 == 0 else image
                    for i, image in enumerate(images)
                ]
        if self.flow:
            stacked = np.concatenate([np.asarray(image)[:, :, None] for image in images], axis=2)
        else:
            stacked = np.concatenate([np.asarray(image) for image in images], axis=2)
        tensor = torch.from_numpy(stacked).permute(2, 0, 1).contiguous().float().div(255)
        repeat = tensor.shape[0] // len(self.mean)
        for channel, mean, std in zip(tensor, self.mean * repeat, self.std * repeat, strict=True):
            channel.sub_(mean).div_(std)
        channels = 2 * self.snippet if self.flow else 3
        return tensor.reshape(-1, channels, 224, 224), {"narration_id": segment}
