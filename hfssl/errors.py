"""User-facing errors.

Every error a user can cause (bad path, bad argument, corrupt file) is an ``HfsslError``:
the CLI catches it once and prints one line, ``error: <problem> (fix: <hint>)``, and exits
non-zero. Programming errors are left as ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations


class HfsslError(Exception):
    """Base class for errors caused by user input; carries a one-line fix hint."""

    exit_code = 2

    def __init__(self, problem: str, hint: str | None = None):
        self.problem = problem
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(self.problem.split())
        if self.hint:
            text += f" (fix: {' '.join(self.hint.split())})"
        return text


class DataError(HfsslError):
    """A data file or data argument is missing, corrupt or inconsistent."""


class ConfigError(HfsslError, ValueError):
    """A configuration value is invalid or inconsistent with another."""


class CheckpointError(HfsslError):
    """A checkpoint folder is missing files, unsafe (pickle) or does not fit the model."""


class HubError(HfsslError):
    """The Hugging Face Hub (or the endpoint in ``HF_ENDPOINT``) refused a request or cannot be reached."""


class OutputError(HfsslError):
    """An output folder or file cannot be created or written (no permission, read-only, disk full)."""
