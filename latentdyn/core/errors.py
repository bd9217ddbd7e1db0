"""The one exception type the CLI turns into a one-line message and exit code 2."""


class LatentdynError(Exception):
    """A problem with the user's input (a bad option, file or config), not a bug.

    The message is one line that names the problem and, where there is one, the fix. The CLI
    prints it as ``Error: <message>`` and exits with code 2, without a traceback.
    """

    exit_code = 2
