"""Renderers: turn results into text for a terminal (rich) or for pipelines (tsv, conllu, jsonl).

Renderers import neither torch nor the models; they take plain Python data.
"""
