"""Exit codes and the one error type every module raises for bad input."""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_ERROR = 2


class ReportError(Exception):
    """Bad input: reported as one line on stderr with a non-zero exit."""
