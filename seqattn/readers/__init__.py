"""Readers, one per modality: they turn user input into sequences (text: sentences of words).

Readers know nothing of models; they raise ``seqattn.errors.InputError`` on bad input.
"""
