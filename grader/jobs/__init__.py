"""One submission graded as jobs: a training job, an evaluation job, and the scores.

`protocol` is the contract with the child and the only module here the child imports.
"""
