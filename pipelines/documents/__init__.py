"""Uploaded files to plain text: per-format extractors (`formats`) and the limits around
them (`extract`)."""
