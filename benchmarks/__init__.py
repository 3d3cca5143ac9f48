"""The course's benchmarks, run from a checkout: ``python3 benchmarks/benchmark.py`` (see benchmarks/README.md).

Not installed with the package.
"""
