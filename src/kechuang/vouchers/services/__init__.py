"""Everything that changes voucher data. Each service is one transaction, checks
who may act (through ``access``) and what the state allows, and writes the audit
log. Services that move money take an ``idempotency_key``: they look it up
first, so a replayed request returns the original result and moves nothing.

The subsidy ratio and the policy's annual caps come from the rules engine's
``voucher`` policy (RULES.md §5), never from this module.
"""

from __future__ import annotations

from kechuang.vouchers.services._common import POLICY, RATIO_PARAMETER, ZERO, amount_in
from kechuang.vouchers.services.claims import (
    claim_approve,
    claim_reject,
    claim_submit,
    settlement_batch_create,
)
from kechuang.vouchers.services.institutions import (
    institution_apply,
    institution_decide,
    offering_create,
)
from kechuang.vouchers.services.ledger_accounts import quota_account, unallocated_account
from kechuang.vouchers.services.orders import (
    ApplyState,
    apply_state,
    order_cancel,
    order_create,
    order_deliver,
    order_voucher_apply,
    subsidy_decision,
)
from kechuang.vouchers.services.programs import program_budget_adjust, program_create
from kechuang.vouchers.services.quota import (
    issued_to,
    policy_annual_cap,
    quota_apply,
    quota_approve,
    quota_cap,
    quota_expire,
    quota_reject,
)

# Callers (views, api, management commands, tests) use these as ``services.<name>``;
# the management command ``vouchers_expire`` looks ``services.quota_expire`` up here at
# call time, which is where test_commands monkeypatches it.
__all__ = [
    "POLICY",
    "RATIO_PARAMETER",
    "ZERO",
    "ApplyState",
    "amount_in",
    "apply_state",
    "claim_approve",
    "claim_reject",
    "claim_submit",
    "institution_apply",
    "institution_decide",
    "issued_to",
    "offering_create",
    "order_cancel",
    "order_create",
    "order_deliver",
    "order_voucher_apply",
    "policy_annual_cap",
    "program_budget_adjust",
    "program_create",
    "quota_account",
    "quota_apply",
    "quota_approve",
    "quota_cap",
    "quota_expire",
    "quota_reject",
    "settlement_batch_create",
    "subsidy_decision",
    "unallocated_account",
]
