"""epic-ar: action recognition on EPIC-KITCHENS-100 (TSN/TRN/TSM), from frames to submission."""

from epic_ar.errors import EpicArError

__version__ = "0.1.0"

__all__ = ["EpicArError", "__version__"]
