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


class NotInForce(RulesError):
    """An as-of date on which the policy has no rules in force (e.g. hte before 2016)."""

    def __init__(self, policy_id: str, as_of: str, parameter: str, since: str | None) -> None:
        self.policy_id = policy_id
        self.as_of = as_of
        since_zh = f"，自 {since} 起施行" if since else ""
        since_en = f"; in force from {since}" if since else ""
        super().__init__(
            f"政策 {policy_id} 在 {as_of} 没有生效的规则（参数 {parameter} 无生效值{since_zh}） "
            f"policy {policy_id} has no rules in force on {as_of} (parameter {parameter} has "
            f"no value{since_en})"
        )
