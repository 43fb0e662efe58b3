"""The publishing error the command line shows as one line; light, so the CLI imports it first."""

from grader.core.errors import UserError


class PublishError(UserError):
    """A board cannot be published where asked; the message names the folder and the fix."""
