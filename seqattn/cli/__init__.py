"""The command line: thin Typer commands that parse arguments, call library functions and render.

Command modules import only typer at module level, so ``seqattn --help``, ``seqattn models`` and
argument errors never import torch.
"""
