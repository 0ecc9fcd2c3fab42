"""Podium's benchmarks: ``python -m bench NAME [--quick]`` from the repository root.

Each benchmark runs its baseline in the same run, prints a table with ratios and ends with
one line of JSON holding its figures. Results are recorded in docs/benchmarks.md.
"""
