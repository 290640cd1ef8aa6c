"""Featurising, the stage between readers and models: what a reader returns -> the tensors a model reads.

    read  ->  featurise  ->  encode  ->  head  ->  render

One module per kind of input: ``text`` (the tagger's words -> word, character and subword ids),
``seq2seq`` (text <-> symbol ids, frame features), ``speech`` (frame tags, SpecAugment masks,
padded clip batches) and ``graph`` (node feature tensors, molecules -> one batched graph), plus
``batching`` (batches of similar length, bounded in padded positions) shared by every task.
Featurisers may read model configs (for their vocabularies) and readers' types; they never
import tasks or the CLI, and never print.
"""
