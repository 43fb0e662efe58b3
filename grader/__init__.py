"""course-grader: sandboxed, deterministic grading of PyTorch homework."""

__version__ = "0.1.0"
