"""The one exception type that means "the user asked for something we cannot do".

Command-line entry points turn it into a one-line message and exit code 2; everything else is a bug
and keeps its traceback.
"""


class UserInputError(ValueError):
    """Bad input from the user: an unknown name, a missing file, a config value out of range."""
