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


def checked_text(model: type, field: str, value: str, *, label: str | None = None) -> str:
    """``value`` if ``model.field`` can hold it, else a refusal naming the field.

    PostgreSQL refuses a text longer than its column (or holding NUL) with an error that
    would reach the user as a 500, and SQLite would store it anyway: both are checked here,
    before anything is written."""
    limit = model._meta.get_field(field).max_length
    name = label or field
    if "\x00" in value:
        raise KechuangError(f"{name} 含有不可见的 NUL 字符 / {name} holds a NUL character", name)
    if limit is not None and len(value) > limit:
        raise KechuangError(
            f"{name} 不能超过 {limit} 个字符 / {name}: at most {limit} characters", name
        )
    return value
