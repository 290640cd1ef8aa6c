"""Analyses of trained models' attention (plain tensors in, plain tensors out; no CLI, no printing)."""
