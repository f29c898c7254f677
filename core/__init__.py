"""Pieces every part of assay shares: typed stage configs with validated ++ overrides, and JSONL helpers.

Stage scripts (inference, evaluation, training) import from here and never from `assay.pipeline`,
so each stage runs alone with `python -m assay.<part>.<stage>`.
"""
