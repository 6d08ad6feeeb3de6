"""`kechuang vouchers_check`: verify every program's ledger (the auditor's check):
budget identity, no negative balance, every transaction balanced. Exit 1 if not."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from kechuang.vouchers import selectors
from kechuang.vouchers.models import Program


class Command(BaseCommand):
    help = "Check the voucher ledger's invariants for every program."

    def handle(self, *args, **opts) -> None:
        problems = []
        for p in Program.objects.order_by("pk"):
            b = selectors.program_balances(p)
            ok = selectors.budget_identity_holds(p)
            negative = selectors.negative_accounts(p)
            unbalanced = selectors.unbalanced_transactions(p)
            self.stdout.write(
                f"{p}: budget {b['budget']} = "
                + " + ".join(f"{k} {b[k]}" for k in selectors.POTS)
                + (" ok" if ok and not negative and not unbalanced else " FAILED")
            )
            if not ok or negative or unbalanced:
                problems.append(str(p))
        if problems:
            raise CommandError("ledger check failed: " + ", ".join(problems))
