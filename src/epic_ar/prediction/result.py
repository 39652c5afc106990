"""What `predict` finds in a video: the top classes of every window, and their JSON layout."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ClassScore:
    """A verb or noun class: its id, its name and its probability `p` (softmax over the
    classes of that window's view-averaged scores)."""

    id: int
    name: str
    p: float


@dataclass(frozen=True)
class ActionScore:
    """A (verb, noun) action, `name` "verb noun", `p` the product of the verb's and the
    noun's probabilities."""

    verb_id: int
    noun_id: int
    name: str
    p: float


@dataclass(frozen=True)
class WindowPrediction:
    """One window, `start` to `end` seconds; each list sorted by `p`, highest first."""

    start: float
    end: float
    verbs: list[ClassScore]
    nouns: list[ClassScore]
    actions: list[ActionScore]


@dataclass(frozen=True)
class VideoPrediction:
    """Every window of a video (`frames` frames at `fps`) scored by `model`, windows of
    `window` seconds every `stride` seconds."""

    video: str
    fps: float
    frames: int
    model: str
    window: float
    stride: float
    windows: list[WindowPrediction]

    def top(self, k: int) -> VideoPrediction:
        """The same windows with each list cut to its first `k` entries."""
        windows = [
            replace(w, verbs=w.verbs[:k], nouns=w.nouns[:k], actions=w.actions[:k])
            for w in self.windows
        ]
        return replace(self, windows=windows)

    def to_json_dict(self) -> dict[str, Any]:
        """The layout of `predict --out FILE.json`."""
        return {
            "video": self.video,
            "fps": self.fps,
            "frames": self.frames,
            "model": self.model,
            "window": self.window,
            "stride": self.stride,
            "windows": [
                {
                    "start": w.start,
                    "end": w.end,
                    "verbs": [[c.id, c.name, c.p] for c in w.verbs],
                    "nouns": [[c.id, c.name, c.p] for c in w.nouns],
                    "actions": [[a.verb_id, a.noun_id, a.name, a.p] for a in w.actions],
                }
                for w in self.windows
            ],
        }
