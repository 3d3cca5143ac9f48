"""Maintainer tooling beside the course: the notebook runner and checker, the lesson table, mutation testing.

Run from the root of a checkout, e.g. ``python3 tools/notebooks.py check`` (see CONTRIBUTING.md).
Nothing here is installed with the package: learners never import it.
"""
