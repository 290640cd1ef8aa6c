"""The project's own errors and exit codes (documented in ``seqattn --help`` and docs/cli.md).

Exit codes: 0 success, 1 a failure while running, 2 a usage or input error.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class SeqattnError(Exception):
    """A failure the user should see as one line on stderr (exit code 1)."""

    exit_code = EXIT_FAILURE


class InputError(SeqattnError):
    """Bad input: a missing or unreadable file, malformed content, a bad option value (exit code 2).

    The message names the file (and line or byte offset where known) and what is wrong.
    """

    exit_code = EXIT_USAGE


class ModelError(InputError):
    """A model directory that is missing, incomplete, of another task or version (exit code 2)."""
