"""Hydra configs of `epic-ar train` (the six published baselines and their shared parts)."""
