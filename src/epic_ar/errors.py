"""The one exception type for user mistakes and bad input files."""


class EpicArError(Exception):
    """A problem the user can fix (bad file, bad argument).

    The command line prints the message as one line and exits non-zero, without a
    traceback, so the message must name the file / key / segment and say what is wrong.
    """
