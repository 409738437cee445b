"""Micro-expression spotting in long videos: intervals, predictions, the metric, features and spotters."""
