"""The one platform error class.

The API renders it as ``{"message": …, "extra": {"field": …}}``, the pages as a
form error, the CLI as one line and a non-zero exit.
"""

from __future__ import annotations


class KechuangError(Exception):
    """A refusal the user can act on: ``message`` says what and why, ``field``
    (when known) names the input it is about."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        return {"message": self.message, "extra": {"field": self.field}}
