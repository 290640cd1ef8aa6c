"""The attention core: score functions, full / truncated attention, positional encodings, encoder.

Imports nothing of the CLI, the readers or the heads.
"""
