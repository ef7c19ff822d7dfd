"""Process exit codes of `python -m client`: scripts branch on these, so they never change."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # argparse exits with 2 on a usage error; bad local input (files, options) shares it.
    USAGE = 2
    AUTH_FAILURE = 3
    BAD_REQUEST = 4
    SERVER_FAILURE = 5
