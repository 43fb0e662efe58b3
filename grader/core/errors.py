"""The one base of every error a person running the grader can fix."""


class UserError(Exception):
    """A spec, a folder, the data, a store or this machine is not as grading needs it: said
    in one line that names the file, key or command to fix. The command line prints it and
    exits 1; never a student's mistake, which is a row."""
