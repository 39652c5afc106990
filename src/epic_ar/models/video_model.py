"""TSN, multi-scale TRN and TSM: a 2D ResNet on every frame, then a temporal consensus.

Module names follow the original project (`base_model`, `new_fc`, `consensus`), so the
published checkpoints' state dicts load as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from epic_ar.data.sampling import default_snippet_length
from epic_ar.errors import EpicArError
from epic_ar.modality import Modality, parse_modality
from epic_ar.models.backbones import build_resnet, feature_dim, flow_conv, pooled_size
from epic_ar.models.config import NUM_CLASSES, ModelConfig, TrnEval, check_temporal_pool
from epic_ar.models.temporal_shift import insert_temporal_shift
from epic_ar.models.trn import MultiScaleRelations

_INIT_STD = 0.001


@dataclass(frozen=True)
class InputSpec:
    """What the model takes: `frame_count` frames of `channels` channels each
    (`segment_length` RGB frames or flow u/v pairs per frame of input; None: the modality's
    default, `default_snippet_length`, which the spec holds from then on)."""

    modality: Modality
    frame_count: int = 8
    segment_length: int | None = None

    def __post_init__(self) -> None:
        # Python callers may still spell it as the configs do ("RGB"): a misread modality
        # would silently build a model taking the wrong number of channels.
        modality = parse_modality(self.modality, "InputSpec: modality")
        object.__setattr__(self, "modality", modality)
        if self.segment_length is None:
            object.__setattr__(self, "segment_length", default_snippet_length(modality))

    @property
    def channels(self) -> int:
        length = self.segment_length
        assert length is not None  # resolved in __post_init__
        return 3 * length if self.modality == "rgb" else 2 * length


class VideoModel(nn.Module):
    """[B, T, C, H, W] float frames → [B, 397] scores (97 verbs, then 300 nouns).

    The backbone sees all B*T frames at once. TSN and TSM average per-frame scores over T;
    MTRN maps frames to `backbone_dim` features and sums relation scores across scales.
    """

    def __init__(self, config: ModelConfig, spec: InputSpec, classes: int = NUM_CLASSES):
        super().__init__()
        self.config, self.spec = config, spec
        self.base_model = build_resnet(config.backbone)
        features = feature_dim(self.base_model)
        if spec.modality == "flow" or spec.channels != 3:
            self.base_model.conv1 = flow_conv(self.base_model.conv1, spec.channels)
        if config.type == "TSM":
            insert_temporal_shift(
                self.base_model, spec.frame_count, config.shift_div, config.temporal_pool
            )
        self.output_frames = spec.frame_count // 2 if self._pools() else spec.frame_count
        head_outputs = config.backbone_dim if config.type == "MTRN" else classes
        self.new_fc: nn.Linear | None
        if config.dropout > 0 or config.type == "MTRN":
            self.base_model.fc = nn.Dropout(p=config.dropout)
            self.new_fc = nn.Linear(features, head_outputs)
            _init_classifier(self.new_fc)
        else:  # the backbone's own fc is the classifier (no new_fc key)
            self.base_model.fc = nn.Linear(features, head_outputs)
            self.new_fc = None
            _init_classifier(self.base_model.fc)
        self.consensus: MultiScaleRelations | None = None
        if config.type == "MTRN":
            self.consensus = MultiScaleRelations(
                config.backbone_dim,
                self.output_frames,
                classes,
                expected_eval=config.trn_eval == "expected",
            )

    def set_frame_count(self, frame_count: int) -> None:
        """Take `frame_count` frames per segment from now on. Only TSN's weights do not
        depend on the frame count; TSM and TRN keep the one they were built with.

        Raises:
            EpicArError: a TSM or TRN model asked for another frame count.
        """
        if frame_count == self.spec.frame_count:
            return
        if self.config.type != "TSN":
            raise EpicArError(
                f"{self.config.type} models run with the frame count they were built with "
                f"({self.spec.frame_count}), not {frame_count}"
            )
        self.spec = InputSpec(self.spec.modality, frame_count, self.spec.segment_length)
        self.output_frames = frame_count

    def set_trn_eval(self, mode: TrnEval, *, seed: int = 0) -> None:
        """How MTRN evaluates its relation subsets from now on: "expected" (deterministic)
        or "sampled" (random draws as the original, seeded with `seed`).

        Other models evaluate deterministically already: "expected" changes nothing.

        Raises:
            EpicArError: "sampled" for a model that is not a TRN.
        """
        if self.consensus is None:
            if mode == "expected":
                return
            raise EpicArError(f"trn_eval sampled applies to TRN models, not {self.config.type}")
        self.consensus.expected_eval = mode == "expected"
        self.consensus.seed(seed)

    def _pools(self) -> bool:
        return self.config.type == "TSM" and self.config.temporal_pool

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, count, channels, height, width = frames.shape
        if (count, channels) != (self.spec.frame_count, self.spec.channels):
            raise EpicArError(
                f"expected [B, {self.spec.frame_count}, {self.spec.channels}, H, W] input, "
                f"got {list(frames.shape)}"
            )
        images = frames.reshape(batch * count, channels, height, width)
        features: torch.Tensor = self.base_model(images)  # [B*T', F] (scores if fc classifies)
        if self.new_fc is not None:
            features = self.new_fc(features)  # [B*T', classes or backbone_dim]
        per_frame = features.view(batch, self.output_frames, -1)  # [B, T', ...]
        if self.consensus is not None:
            relations: torch.Tensor = self.consensus(per_frame)  # [B, classes]
            return relations
        return per_frame.mean(dim=1)  # [B, classes]

    @property
    def feature_size(self) -> int:
        """F, the size of `pooled_features` (512 for ResNet-18/34, 2048 for ResNet-50 and up)."""
        return pooled_size(self.base_model)

    def pooled_features(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] float frames -> [B, F]: the backbone's globally pooled output
        (what the classifier takes, before dropout), averaged over the frames it comes out
        for: the T snippets for TSN; for TSM the last stage's T (or T/2 with temporal
        pooling) time steps, shifted across time as in scoring; for TRN the per-frame
        features before the relation module."""
        batch, count, channels, height, width = frames.shape
        if (count, channels) != (self.spec.frame_count, self.spec.channels):
            raise EpicArError(
                f"expected [B, {self.spec.frame_count}, {self.spec.channels}, H, W] input, "
                f"got {list(frames.shape)}"
            )
        pooled = self._pooled(frames.reshape(batch * count, channels, height, width))
        return pooled.view(batch, self.output_frames, -1).mean(dim=1)  # [B*T', F] -> [B, F]

    def snippet_features(self, snippets: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] float snippets -> [N, F]: the backbone's pooled output of each on
        its own. For TSN and TRN, `pooled_features` is the mean of these over a segment's
        snippets; TSM shifts channels between a segment's snippets and has none.

        Raises:
            EpicArError: a TSM model.
        """
        if self.config.type == "TSM":
            raise EpicArError("TSM mixes a segment's snippets: it has no per-snippet features")
        return self._pooled(snippets)

    def _pooled(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] -> [N', F] (N' = N / 2 with TSM's temporal pooling)."""
        net = self.base_model
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def train(self, mode: bool = True) -> VideoModel:
        """Partial BN: in training, every BatchNorm but the first stays in eval mode with
        its affine parameters frozen (as the original's `partial_bn`)."""
        super().train(mode)
        if mode and self.config.partial_bn:
            for bn in _batch_norms(self.base_model)[1:]:
                bn.eval()
                for parameter in bn.parameters():
                    parameter.requires_grad_(False)
        return self


def _init_classifier(layer: nn.Linear) -> None:
    nn.init.normal_(layer.weight, 0, _INIT_STD)
    nn.init.constant_(layer.bias, 0)


def _batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def build_model(config: ModelConfig, spec: InputSpec) -> VideoModel:
    """The model for `config` and `spec`, classifier freshly initialised, backbone not
    (see `epic_ar.models.pretrained.load_pretrained`).

    Raises:
        EpicArError: `config.temporal_pool` where it cannot work (`check_temporal_pool`).
    """
    check_temporal_pool(config, spec.frame_count)
    return VideoModel(config, spec)


def parameter_groups(
    model: VideoModel, *, lr: float, weight_decay: float, apply_multipliers: bool = False
) -> list[dict[str, Any]]:
    """The original's optimiser groups: first conv weight / bias, other weights, other
    biases, BN (frozen BNs left out under partial BN).

    Multipliers (first conv x5 lr for flow, biases x2 lr and no decay, first-conv bias x10
    for flow, BN no decay) are only applied with `apply_multipliers`: the original passed
    them to SGD, which ignored them, and the published models were trained so.
    """
    flow = model.spec.modality == "flow"
    groups: dict[str, list[torch.Tensor]] = {
        name: []
        for name in ("first_conv_weight", "first_conv_bias", "normal_weight", "normal_bias", "bn")
    }
    first_conv_seen = False
    bn_count = 0
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            first = isinstance(module, nn.Conv2d) and not first_conv_seen
            first_conv_seen = first_conv_seen or first
            prefix = "first_conv" if first else "normal"
            groups[f"{prefix}_weight"].append(module.weight)
            if module.bias is not None:
                groups[f"{prefix}_bias"].append(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            bn_count += 1
            if not model.config.partial_bn or bn_count == 1:
                groups["bn"].extend(module.parameters())
    multipliers = {
        "first_conv_weight": (5.0 if flow else 1.0, 1.0),
        "first_conv_bias": (10.0 if flow else 2.0, 0.0),
        "normal_weight": (1.0, 1.0),
        "normal_bias": (2.0, 0.0),
        "bn": (1.0, 0.0),
    }
    result = []
    for name, parameters in groups.items():
        lr_mult, decay_mult = multipliers[name] if apply_multipliers else (1.0, 1.0)
        result.append(
            {
                "name": name,
                "params": parameters,
                "lr": lr * lr_mult,
                "weight_decay": weight_decay * decay_mult,
                "lr_mult": lr_mult,
                "decay_mult": decay_mult,
            }
        )
    return result
