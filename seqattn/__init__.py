"""seqattn: self-attention models for sequences (text, speech frames, graph nodes) from the shell."""

__version__ = "0.1.0"
