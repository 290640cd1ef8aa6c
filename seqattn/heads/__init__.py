"""Heads, one per output type of the lecture: a tag per element (N->N), one class (N->1), a sequence."""
