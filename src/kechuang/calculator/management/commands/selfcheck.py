"""``kechuang selfcheck CREDIT_CODE [--as-of D] [--lang zh|en] [--json]``

The enterprise self-check on the console: every policy in force on the date,
explained for the enterprise's registry facts (the page's content, as text or JSON).
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kechuang.calculator import selectors
from kechuang.registry.selectors import enterprise_get
from kechuang.rules.numbers import dumps_exact


class Command(BaseCommand):
    help = "Explain every policy in force for one enterprise (政策计算器 self-check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("credit_code")
        parser.add_argument("--as-of", dest="as_of", help="ISO date (default: today)")
        parser.add_argument("--lang", choices=["zh", "en"], default="zh")
        parser.add_argument("--json", action="store_true", help="every decision's to_dict()")

    def handle(self, *args, credit_code: str, as_of: str | None, lang: str, json: bool, **options):
        day = parse_as_of(as_of)
        enterprise = enterprise_get(credit_code=credit_code)
        if enterprise is None:
            raise CommandError(f"no enterprise with credit code {credit_code!r}")
        if json:
            self.stdout.write(render_json(enterprise.credit_code, day))
            return
        self.stdout.write(render_text(enterprise, day, lang))


def parse_as_of(text: str | None) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--as-of: not an ISO date: {text!r}") from None


def render_json(credit_code: str, as_of: dt.date) -> str:
    enterprise = enterprise_get(credit_code=credit_code)
    decisions = selectors.decisions_as_dicts(enterprise=enterprise, as_of=as_of)
    payload = {"credit_code": credit_code, "as_of": as_of.isoformat(), "decisions": decisions}
    return dumps_exact(payload, ensure_ascii=False, indent=2, default=str)


def render_text(enterprise, as_of: dt.date, lang: str) -> str:
    row = selectors.enterprise_facts_row(enterprise, as_of)
    from kechuang.calculator import law

    parts = [f"{enterprise.name} ({enterprise.credit_code}) — {as_of.isoformat()}", ""]
    for policy in selectors.policies_in_force(as_of):
        parts.append(law.evaluate_flat(policy, row, as_of).explain(lang))
        parts.append("")
    return "\n".join(parts)
