"""The optimiser's package: pure Python (and later NumPy/SciPy/OR-Tools), no Flask, no SQLAlchemy.

For now it holds the hard pairing rules (`matcher.rules`) that self-claims and dispatches
already enforce; the optimiser proper builds on them.
"""
