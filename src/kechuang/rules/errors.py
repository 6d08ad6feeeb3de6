"""Errors the rules engine raises: each names the file, line, field or policy at fault."""

from __future__ import annotations


class RulesError(Exception):
    """Base class: every engine error renders as one clear line."""


class PolicyFileError(RulesError):
    """A policy file that cannot be loaded or fails its checks."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class UnknownPolicy(RulesError):
    def __init__(self, policy_id: str, known: list[str]) -> None:
        self.policy_id = policy_id
        super().__init__(
            f"未知政策 unknown policy '{policy_id}' (known: {', '.join(sorted(known))})"
        )


class MalformedFacts(RulesError):
    """Facts that are not of the nested form RULES.md defines (not merely missing data)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"事实格式错误 malformed facts at '{field}': {reason}")


class UnknownDialect(RulesError):
    def __init__(self, dialect: str, known: list[str]) -> None:
        super().__init__(f"unknown SQL dialect '{dialect}' (known: {', '.join(known)})")
