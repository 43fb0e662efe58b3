"""The one error every data module raises, for the command line to show as one line."""

from grader.core.errors import UserError


class DataError(UserError):
    """Data is missing or unusable; the message is one line naming the file(s) and the fix."""
