"""The Lightning module: a video model, its loss, optimiser, schedule and logged metrics.

Checkpoints keep the original project's layout: `state_dict` keys start with `model.` (the
attribute holding the network) and `hyper_parameters` is the run config as plain dicts, so
`epic_ar.models.load_checkpoint` reads ours and the published ones alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning import LightningModule
from torch.nn import functional
from torchmetrics import MeanMetric

from epic_ar.models.config import split_scores
from epic_ar.models.video_model import build_model, parameter_groups
from epic_ar.training.metrics import action_ranks, class_ranks
from epic_ar.training.run_config import RunConfig, parse_run_config

Batch = tuple[torch.Tensor, dict[str, Any]]
TOP_K = (1, 5)
VAL_METRICS = [f"{task}_top{k}" for task in ("verb", "noun", "action") for k in TOP_K]


def batch_seed(seed: int, step: int, batch_index: int, rank: int) -> int:
    """The seed of one process's random draws (dropout, TRN subsets) for one batch:
    optimiser step, batch within the epoch (distinct under gradient accumulation), rank."""
    return int(np.random.SeedSequence([seed, step, batch_index, rank]).generate_state(1)[0])


class ActionRecognitionSystem(LightningModule):
    """Trains a `VideoModel` on (frames [B, T, C, H, W] float, metadata) batches.

    Loss: the mean of the verb and noun cross-entropies. The model starts as built (random
    backbone): `epic_ar.training.train` loads pretrained or given weights before fitting.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters(config)
        self.run_config: RunConfig = parse_run_config(config)
        self.model = build_model(self.run_config.model, self.run_config.input_spec)
        # Partial BN (`VideoModel.train`) freezes parameters: before DDP wraps the model, as
        # DDP expects a gradient for every parameter that requires one when it wraps.
        self.model.train()
        if self.run_config.init.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.run_config.init.compile:
            self.model.compile()  # in place: state_dict keys unchanged
        self.val_metrics = {name: MeanMetric() for name in VAL_METRICS}
        for name, metric in self.val_metrics.items():  # registered: moved with the module
            self.add_module(f"val_{name}", metric)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.model(frames)
        return scores

    def _step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Losses, and the 0-based ranks ([B] int64) of the true verbs and nouns."""
        frames, metadata = batch
        verb_scores, noun_scores = split_scores(self(frames))
        verbs, nouns = metadata["verb_class"], metadata["noun_class"]
        losses = {
            "verb_loss": functional.cross_entropy(verb_scores, verbs),
            "noun_loss": functional.cross_entropy(noun_scores, nouns),
        }
        losses["loss"] = (losses["verb_loss"] + losses["noun_loss"]) / 2
        verb_scores, noun_scores = verb_scores.detach(), noun_scores.detach()
        ranks = {"verb": class_ranks(verb_scores, verbs), "noun": class_ranks(noun_scores, nouns)}
        if not self.training:
            ranks["action"] = action_ranks(verb_scores, noun_scores, verbs, nouns)
        return losses, ranks

    def on_train_epoch_start(self) -> None:
        # Lightning 2 never calls train() itself (after validation it restores each
        # submodule's mode). Re-apply partial BN's modes each epoch, as the original's
        # Lightning 0.9 did, so that frozen BatchNorms never update their running statistics.
        self.model.train()

    def on_train_batch_start(self, batch: Batch, batch_index: int) -> None:
        # Random draws depend on (seed, step, batch, rank) only, so a run resumed from a
        # checkpoint continues exactly as the uninterrupted run would have (whatever else
        # drew from the global generator in between, e.g. DataLoader iterators).
        seed = batch_seed(self.run_config.seed, self.global_step, batch_index, self.global_rank)
        torch.manual_seed(seed)
        if self.model.consensus is not None:
            self.model.consensus.seed(seed)

    def training_step(self, batch: Batch, batch_index: int) -> torch.Tensor:
        # Logged as this process sees them (no all-reduce every step under DDP); validation
        # metrics are exact over all processes.
        losses, ranks = self._step(batch)
        size = len(batch[0])
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=size,
                     prog_bar=name == "loss")  # fmt: skip
        for task, task_ranks in ranks.items():
            for k in TOP_K:
                hits = (task_ranks < k).float().mean() * 100
                self.log(f"train/{task}_top{k}", hits, on_step=True, on_epoch=True,
                         batch_size=size)  # fmt: skip
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        losses, ranks = self._step(batch)
        for name, value in losses.items():
            self.log(f"val/{name}", value, on_epoch=True, batch_size=len(batch[0]),
                     sync_dist=True, prog_bar=name == "loss")  # fmt: skip
        for task, task_ranks in ranks.items():
            for k in TOP_K:
                metric = self.val_metrics[f"{task}_top{k}"]
                metric.update((task_ranks < k).float() * 100)  # exact over the epoch and ranks
                self.log(f"val/{task}_top{k}", metric, on_epoch=True, prog_bar=k == 1)

    def configure_optimizers(self) -> Any:
        learning = self.run_config.learning
        groups = [
            group
            for group in parameter_groups(
                self.model, lr=learning.lr, weight_decay=learning.weight_decay
            )
            if group["params"]
        ]
        optimizer: torch.optim.Optimizer
        if learning.optimizer == "SGD":
            optimizer = torch.optim.SGD(
                groups, lr=learning.lr, momentum=learning.momentum,
                weight_decay=learning.weight_decay,
            )  # fmt: skip
        else:
            optimizer_class = getattr(torch.optim, learning.optimizer)
            optimizer = optimizer_class(groups, lr=learning.lr, weight_decay=learning.weight_decay)
        if learning.scheduler is None:
            return optimizer
        # "StepLR" (the original's name for its schedule: the rate times gamma at each epoch
        # of a list) and "MultiStepLR" both mean torch's MultiStepLR, not torch's StepLR.
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(learning.milestones), gamma=learning.gamma
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
