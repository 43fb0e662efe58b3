"""Leaf modules every part of the grader shares: results, specs, submissions, files, text.

Nothing here imports torch, numpy, pandas or scikit-learn, nor any other part of the grader.
"""
