"""Plain, typed scoring logic behind the shipped metrics.

The metric scripts in :mod:`ftdojo.metrics` are thin ``evaluate`` wrappers that import
from here, so that the scoring rules can be tested directly and reused by tasks.
"""
