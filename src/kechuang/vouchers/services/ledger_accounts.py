"""The program's ledger accounts the services post to, created on first use."""

from __future__ import annotations

from typing import Any

from kechuang.registry.models import Enterprise
from kechuang.vouchers.models import LedgerAccount, Program


def _account(program: Program, kind: str, **owner: Any) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(program=program, kind=kind, **owner)
    return account


def quota_account(program: Program, enterprise: Enterprise) -> LedgerAccount:
    return _account(program, LedgerAccount.Kind.QUOTA, enterprise=enterprise)


def unallocated_account(program: Program) -> LedgerAccount:
    return _account(program, LedgerAccount.Kind.UNALLOCATED)
