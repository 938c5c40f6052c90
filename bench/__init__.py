"""Benchmarks: each script prints a table and exits non-zero when a target is missed.

Run from the repository root, e.g. `python -m bench.faq_latency`.
"""
