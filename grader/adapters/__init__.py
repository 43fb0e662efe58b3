"""Adapters between the grader and the systems around a course: LMS exports in, Gradescope out."""
