"""Frame storage: gulp directories (the gulpio2 format) and the ingest that fills them."""

from epic_ar.gulp.reader import GulpDirectory

__all__ = ["GulpDirectory"]
