"""Benchmarks that the CLI (`seqattn benchmark`) and `make bench` share."""
