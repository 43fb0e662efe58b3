"""Grades for the LMS: the course's grading policy (points, lateness, extensions), a row turned
into points at export time, and the gradebook files Canvas and Moodle import."""
