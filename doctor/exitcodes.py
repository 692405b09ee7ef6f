"""Process exit codes, as an enum (DESIGN §5)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # usage, configuration or rule-file error
    TARGET = 3  # the target could not be loaded or run (import error, crash, hang)
