"""Results files, modality fusion, the official metrics, and challenge submissions."""

from epic_ar.evaluation.results import Results, load_results, save_results

__all__ = ["Results", "load_results", "save_results"]
