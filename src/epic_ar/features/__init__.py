"""Features for downstream models (anticipation, detection): the backbone's pooled output
over windows of whole videos, or over annotated segments."""

FORMATS = ("rulstm-lmdb", "actionformer", "segments")  # what `features` writes
