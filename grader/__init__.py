"""course-grader: sandboxed, deterministic grading of PyTorch homework."""

__version__ = "0.2.0"
