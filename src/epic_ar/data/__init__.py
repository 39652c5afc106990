"""Sampling, transforms, datasets and synthetic EPIC-shaped data."""
