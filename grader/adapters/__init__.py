"""Adapters to the platforms a course grades on (Gradescope)."""
