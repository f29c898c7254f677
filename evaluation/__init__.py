"""Evaluation: answer and code extraction, graders, metrics, failure taxonomy, summaries."""
