"""ResNet backbones from torchvision, adapted to TSN: flow input, dropout head."""

from __future__ import annotations

import torch
import torchvision
from torch import nn


def build_resnet(name: str) -> torchvision.models.ResNet:
    """An uninitialised torchvision ResNet (`resnet18` ... `resnet152`)."""
    model = getattr(torchvision.models, name)(weights=None)
    assert isinstance(model, torchvision.models.ResNet)
    return model


def feature_dim(resnet: torchvision.models.ResNet) -> int:
    """Size of the pooled features the classifier takes (512 or 2048)."""
    return int(resnet.fc.in_features)


def pooled_size(resnet: torchvision.models.ResNet) -> int:
    """Channels of the last stage's output, the size of the pooled features (also once
    the classifier `fc` has been replaced)."""
    last_block = resnet.layer4[-1]
    norm = getattr(last_block, "bn3", None) or last_block.bn2
    return int(norm.num_features)


def flow_kernel(rgb_kernel: torch.Tensor, in_channels: int) -> torch.Tensor:
    """[O, C, kh, kw] → [O, in_channels, kh, kw]: the mean over input channels, repeated
    (the original's RGB → flow initialisation of the first conv)."""
    mean = rgb_kernel.mean(dim=1, keepdim=True)  # [O, 1, kh, kw]
    return mean.expand(-1, in_channels, -1, -1).contiguous()


def flow_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of `conv` taking `in_channels` channels, its kernel the mean of the original
    kernel over input channels, repeated (the original's RGB → flow initialisation)."""
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(flow_kernel(conv.weight, in_channels))
        if conv.bias is not None:
            assert new.bias is not None
            new.bias.copy_(conv.bias)
    return new
