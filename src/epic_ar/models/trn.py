"""Multi-scale temporal relations (TRN) over per-frame features."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from epic_ar.errors import EpicArError

SUBSETS_PER_SCALE = 3  # relations sampled per smaller scale, as in the original
BOTTLENECK = 256


def relation_subsets(frames: int, scale: int) -> list[tuple[int, ...]]:
    """The ordered `scale`-subsets of range(frames), in lexicographic order."""
    return list(itertools.combinations(range(frames), scale))


class MultiScaleRelations(nn.Module):
    """Sum of relation MLPs over frame subsets of every scale k = T, T-1, ..., 2.

    Input [B, T, D] frame features, output [B, classes]. Scale T uses all frames; each
    smaller scale adds its MLP's output for 3 of its subsets (all when fewer exist). Which
    3 is random in training and in `sampled` evaluation; `expected` evaluation adds 3 times
    the mean over all the scale's subsets instead (the expectation: deterministic).
    Module and key names follow the original (`fc_fusion_scales.<i>.1/.3`).
    """

    def __init__(self, feature_dim: int, frames: int, classes: int, *, expected_eval: bool = True):
        super().__init__()
        self.feature_dim = feature_dim
        self.frames = frames
        self.scales = list(range(frames, 1, -1))
        self.subsets = [relation_subsets(frames, scale) for scale in self.scales]
        self.samples_per_scale = [min(SUBSETS_PER_SCALE, len(s)) for s in self.subsets]
        self.fc_fusion_scales = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Linear(scale * feature_dim, BOTTLENECK),
                nn.ReLU(),
                nn.Linear(BOTTLENECK, classes),
            )
            for scale in self.scales
        )
        self.expected_eval = expected_eval
        self.rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        """Seed the subset draws (training and `sampled` evaluation)."""
        self.rng = np.random.default_rng(seed)

    def _relation(
        self, features: torch.Tensor, scale_index: int, subsets: np.ndarray
    ) -> torch.Tensor:
        """[B, T, D] features, [S, k] frame indices → [B, classes], summed over the S subsets."""
        batch = features.shape[0]
        chosen = features[:, torch.as_tensor(subsets, device=features.device)]  # [B, S, k, D]
        flat = chosen.reshape(batch * len(subsets), -1)  # [B*S, k*D]
        scores: torch.Tensor = self.fc_fusion_scales[scale_index](flat)  # [B*S, classes]
        return scores.view(batch, len(subsets), -1).sum(dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[1:] != (self.frames, self.feature_dim):
            raise EpicArError(
                f"expected [B, {self.frames}, {self.feature_dim}] features, "
                f"got {list(features.shape)}"
            )
        total = self._relation(features, 0, np.asarray(self.subsets[0]))
        expected = self.expected_eval and not self.training
        for index in range(1, len(self.scales)):
            subsets = np.asarray(self.subsets[index])
            count = self.samples_per_scale[index]
            if expected:
                total = total + self._relation(features, index, subsets) * (count / len(subsets))
            else:
                picked = self.rng.choice(len(subsets), count, replace=False)
                total = total + self._relation(features, index, subsets[picked])
        return total
