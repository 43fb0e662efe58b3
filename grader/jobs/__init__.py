"""One submission graded as jobs: a training job, an evaluation job, and the scores."""
