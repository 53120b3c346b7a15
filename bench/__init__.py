"""Benchmarks. Figures go to bench/RESULTS.md with machine, date and command."""
