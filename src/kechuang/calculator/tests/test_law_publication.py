"""Reforms never change the law in force until an admin publishes a new dated value.

The story: staff_zhang prepares a reform raising the district service-voucher ratio;
admin_root publishes it from 2026-01-01 under a district document. Orders dated from
that day get the new ratio through the real voucher service; earlier orders keep the
old one. Staff and enterprise users cannot publish, and bad input names its field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import translation

from kechuang.accounts.models import AuditLog
from kechuang.accounts.tokens import token_create
from kechuang.calculator import law, reforms, runs, selectors, services, services_law
from kechuang.calculator.models_law import ParameterPublication
from kechuang.calculator.models_runs import MianshenRun
from kechuang.calculator.services_runs import mianshen_run_start
from kechuang.calculator.tests.selfcheck_data import AS_OF, put_alice_on_the_register
from kechuang.errors import KechuangError
from kechuang.rules import get_policy
from kechuang.vouchers import services as voucher_services
from kechuang.vouchers.tests import factories

NEW_YEAR = dt.date(2026, 1, 1)
EVE = NEW_YEAR - dt.timedelta(days=1)
VOUCHER_RATIO = "district_ratio"
HTE = "district_hte_first_reward"
BASIS = {"document_number": "普科委〔2026〕1号", "article": "第三条"}


def file_value(policy_id: str, name: str, day: dt.date) -> Decimal:
    return Decimal(runs.decimal_text(get_policy(policy_id).parameters[name].at(day).value))


def in_force_value(policy_id: str, name: str, day: dt.date) -> Decimal:
    return Decimal(runs.decimal_text(law.policy_in_force(policy_id).parameters[name].at(day).value))


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def old_ratio() -> Decimal:
    return file_value("voucher", VOUCHER_RATIO, NEW_YEAR)


@pytest.fixture
def new_ratio(old_ratio) -> Decimal:
    # Halfway to 1: a different ratio, still a ratio, no policy figure written here.
    return (old_ratio + 1) / 2


@pytest.fixture
def ratio_reform(staff_zhang, new_ratio):
    return reforms.reform_create(
        policy_id="voucher", name="服务券比例上调", overrides={VOUCHER_RATIO: str(new_ratio)},
        actor=staff_zhang, as_of=NEW_YEAR,
    )


def ratio_reform_of(value: Decimal, actor):
    """A reform of the district voucher ratio to ``value``, to publish."""
    return reforms.reform_create(
        policy_id="voucher", name=f"比例 {value}", overrides={VOUCHER_RATIO: str(value)},
        actor=actor, as_of=NEW_YEAR,
    )


def publish(reform, actor, **kw):
    args = {"parameters": list(reform.overrides), "effective_from": NEW_YEAR, **BASIS}
    args.update(kw)
    return services_law.parameter_publish(reform=reform, actor=actor, **args)


def apply_voucher(prog, staff, ent_user, offer, day: dt.date, amount: str = "10000.00"):
    order = factories.order(prog, ent_user, offer, amount, order_date=day)
    return voucher_services.order_voucher_apply(
        order=order, actor=ent_user, idempotency_key=factories.key("order")
    )


# --------------------------------------------------------------------------- the law in force


@pytest.mark.django_db
def test_a_reform_alone_changes_nothing(ratio_reform, old_ratio):
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR) == old_ratio
    assert law.policy_in_force("voucher") is get_policy("voucher")


@pytest.mark.django_db
def test_a_published_value_is_in_force_from_its_date_and_not_before(
    ratio_reform, admin_root, old_ratio, new_ratio
):
    before_hash = law.policy_in_force("voucher").sha256
    [pub] = publish(ratio_reform, admin_root)
    assert pub.previous_value == runs.decimal_text(old_ratio)
    assert in_force_value("voucher", VOUCHER_RATIO, EVE) == old_ratio
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR) == new_ratio
    assert in_force_value("voucher", VOUCHER_RATIO, dt.date(2030, 1, 1)) == new_ratio
    # The file's earlier entries are unchanged, and the file itself too.
    policy = law.policy_in_force("voucher")
    file_entries = get_policy("voucher").parameters[VOUCHER_RATIO].entries
    assert policy.parameters[VOUCHER_RATIO].entries[: len(file_entries) - 1] == file_entries[:-1]
    assert file_value("voucher", VOUCHER_RATIO, NEW_YEAR) == old_ratio
    assert policy.sha256 != before_hash == get_policy("voucher").sha256
    entry = policy.parameters[VOUCHER_RATIO].at(NEW_YEAR)
    assert "普科委〔2026〕1号 第三条" in entry.article and "published by admin_root" in entry.article


@pytest.mark.django_db
def test_an_open_ended_value_published_after_a_temporary_one_stays_in_force(
    staff_zhang, admin_root, old_ratio
):
    temporary, lasting = (old_ratio + 1) / 2, (old_ratio + 3) / 4
    publish(ratio_reform_of(temporary, staff_zhang), admin_root, effective_until=NEW_YEAR + dt.timedelta(days=180))
    publish(ratio_reform_of(lasting, staff_zhang), admin_root, effective_from=NEW_YEAR + dt.timedelta(days=59))
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR) == temporary
    for later in (60, 181, 365 * 3):
        # The file's value resumes after the temporary one only where nothing replaced it.
        assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=later)) == lasting


@pytest.mark.django_db
def test_a_temporary_value_inside_an_open_ended_one_gives_way_back_to_it(
    staff_zhang, admin_root, old_ratio
):
    lasting, temporary = (old_ratio + 1) / 2, (old_ratio + 3) / 4
    publish(ratio_reform_of(lasting, staff_zhang), admin_root)
    publish(
        ratio_reform_of(temporary, staff_zhang), admin_root, effective_from=NEW_YEAR + dt.timedelta(days=100),
        effective_until=NEW_YEAR + dt.timedelta(days=180),
    )
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=120)) == temporary
    for later in (0, 99, 181, 365 * 3):
        assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=later)) == lasting


@pytest.mark.django_db
def test_the_voucher_ledger_applies_the_published_ratio_to_orders_from_that_day(
    staff_zhang, admin_root, ent_alice, inst_lab, ratio_reform, old_ratio, new_ratio
):
    prog = factories.program(staff_zhang, valid_from=dt.date(2025, 7, 1), year=2025)
    offer = factories.offering(factories.institution(staff_zhang, inst_lab), inst_lab)
    factories.issue(prog, staff_zhang, ent_alice, "100000")
    publish(ratio_reform, admin_root)

    before = apply_voucher(prog, staff_zhang, ent_alice, offer, EVE)
    after = apply_voucher(prog, staff_zhang, ent_alice, offer, NEW_YEAR)
    assert Decimal(before.ratio) == old_ratio
    assert before.subsidy_amount == (Decimal("10000.00") * old_ratio).quantize(Decimal("0.01"))
    assert Decimal(after.ratio) == new_ratio
    assert after.subsidy_amount == (Decimal("10000.00") * new_ratio).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )
    assert after.ratio_since == NEW_YEAR and "普科委〔2026〕1号" in after.ratio_article
    assert after.policy_sha256 == law.policy_in_force("voucher").sha256
    assert before.ratio_since < NEW_YEAR and "普科委〔2026〕1号" not in before.ratio_article


@pytest.mark.django_db
def test_the_calculator_gives_the_published_ratio_by_order_date(ratio_reform, admin_root, new_ratio):
    facts = {
        "scheme": "district_service_voucher", "applicant_type": "enterprise",
        "registered_in_shanghai": True, "is_tsme": True, "contract_amount": "10000",
        "service_provider_on_platform": True, "service_category_eligible": True,
        "voucher_used_this_year": "0",
    }

    def subsidy(day: dt.date) -> Decimal:
        decision = services.calculator_try(
            policy_id="voucher", facts={**facts, "order_date": day.isoformat()}, as_of=day
        ).to_dict()
        return Decimal(str(decision["subsidy_amount"]))

    eve_before, day_before = subsidy(EVE), subsidy(NEW_YEAR)
    publish(ratio_reform, admin_root)
    assert subsidy(EVE) == eve_before
    assert subsidy(NEW_YEAR) == Decimal("10000") * new_ratio != day_before


@pytest.fixture
def alice(alice_corp):
    return put_alice_on_the_register(alice_corp)


@pytest.fixture
def reward_reform(staff_zhang):
    new = file_value(HTE, "reward_amount", AS_OF) * 2
    return reforms.reform_create(
        policy_id=HTE, name="首次认定奖励翻倍", overrides={"reward_amount": str(new)},
        actor=staff_zhang, as_of=AS_OF,
    )


@pytest.mark.django_db
def test_the_selfcheck_shows_the_published_value_with_its_document_from_its_date(
    client, alice, ent_alice, admin_root, reward_reform
):
    old = file_value(HTE, "reward_amount", AS_OF)
    publish(reward_reform, admin_root, effective_from=AS_OF)

    def benefit(day: dt.date) -> Decimal:
        checks = selectors.enterprise_selfcheck(enterprise=alice, as_of=day).checks
        return {c.policy_id: c for c in checks}[HTE].benefit

    assert benefit(AS_OF - dt.timedelta(days=1)) == old
    assert benefit(AS_OF) == old * 2
    client.force_login(ent_alice)
    page = client.get(f"/calculator/{alice.credit_code}/?as_of={AS_OF.isoformat()}").content.decode()
    assert "普科委〔2026〕1号 第三条" in page and "published by admin_root on" in page


@pytest.mark.django_db
def test_a_mianshen_run_records_the_published_value_and_a_new_policy_hash(
    alice, staff_zhang, admin_root, reward_reform, immediate_tasks,
    django_capture_on_commit_callbacks,
):
    def run() -> MianshenRun:
        with django_capture_on_commit_callbacks(execute=True):
            r = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
        r.refresh_from_db()
        assert r.status == MianshenRun.Status.DONE, r.error
        return r

    first = run()
    [pub] = publish(reward_reform, admin_root, effective_from=AS_OF)
    second = run()
    [recorded] = second.parameters[HTE]["reward_amount"]
    assert Decimal(recorded["value"]) == pub.value and recorded["since"] == AS_OF.isoformat()
    assert "普科委〔2026〕1号" in recorded["article"]
    assert second.policy_hashes[HTE] != first.policy_hashes[HTE] == get_policy(HTE).sha256
    paid = second.results.get(credit_code=alice.credit_code)
    assert paid.benefit == pub.value
    # The first run still explains as it computed, with the value it recorded.
    result = first.results.get(credit_code=alice.credit_code)
    decision = reforms.explain_result(first, result)
    assert Decimal(str(decision.to_dict()["benefit_amount"])) == result.benefit != pub.value


# --------------------------------------------------------------------------- who may publish


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["staff_zhang", "ent_alice", "auditor_li"])
def test_only_an_admin_may_publish_through_the_api(who, request, ratio_reform, old_ratio):
    user = request.getfixturevalue(who)
    _, token = token_create(user=user)
    response = Client().post(
        f"/api/mianshen/reforms/{ratio_reform.pk}/publish",
        {"parameters": [VOUCHER_RATIO], "effective_from": "2026-01-01", **BASIS},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 403
    assert not ParameterPublication.objects.exists()
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR) == old_ratio


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["staff_zhang", "ent_alice"])
def test_only_an_admin_may_publish_on_the_page(who, request, ratio_reform):
    client = Client(enforce_csrf_checks=False)
    client.force_login(request.getfixturevalue(who))
    response = client.post(
        f"/calculator/reforms/{ratio_reform.pk}/publish/",
        {"parameters": VOUCHER_RATIO, "effective_from": "2026-01-01", **BASIS},
    )
    assert response.status_code == 403
    assert not ParameterPublication.objects.exists()
    page = client.get(f"/calculator/reforms/{ratio_reform.pk}/")
    assert "publish-form" not in page.content.decode()


@pytest.mark.django_db
def test_the_publish_form_needs_a_csrf_token(admin_root, ratio_reform):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_root)
    response = client.post(
        f"/calculator/reforms/{ratio_reform.pk}/publish/",
        {"parameters": VOUCHER_RATIO, "effective_from": "2026-01-01", **BASIS},
    )
    assert response.status_code == 403
    assert not ParameterPublication.objects.exists()


@pytest.mark.django_db
def test_an_admin_publishes_on_the_page_and_the_audit_log_has_before_and_after(
    client, admin_root, ratio_reform, old_ratio, new_ratio
):
    client.force_login(admin_root)
    page = client.get(f"/calculator/reforms/{ratio_reform.pk}/").content.decode()
    assert "publish-form" in page
    response = client.post(
        f"/calculator/reforms/{ratio_reform.pk}/publish/",
        {"parameters": VOUCHER_RATIO, "effective_from": "2026-01-01", "reason": "年度调整", **BASIS},
    )
    assert response.status_code == 302
    pub = ParameterPublication.objects.get()
    assert pub.published_by == admin_root and pub.reform == ratio_reform and pub.value == new_ratio
    log = AuditLog.objects.get(action="parameter_publish")
    assert log.actor == admin_root and log.obj_id == str(pub.pk)
    assert Decimal(log.before["value"]) == old_ratio and Decimal(log.after["value"]) == new_ratio
    assert log.after["document_number"] == "普科委〔2026〕1号"
    page = client.get(f"/calculator/reforms/{ratio_reform.pk}/").content.decode()
    assert "管理员 admin_root 于" in page and "普科委〔2026〕1号 第三条" in page


@pytest.mark.django_db
def test_an_admin_publishes_through_the_api(admin_root, ratio_reform, new_ratio):
    _, token = token_create(user=admin_root)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = Client().post(
        f"/api/mianshen/reforms/{ratio_reform.pk}/publish",
        {"parameters": [VOUCHER_RATIO], "effective_from": "2026-01-01", **BASIS},
        content_type="application/json", **auth,
    )
    assert response.status_code == 201, response.content
    [out] = response.json()
    assert Decimal(out["value"]) == new_ratio and out["published_by"] == "admin_root"
    listed = Client().get("/api/mianshen/publications?policy=voucher", **auth).json()
    assert [p["id"] for p in listed] == [out["id"]]
    # The same parameter on the same day again: refused, naming the field.
    again = Client().post(
        f"/api/mianshen/reforms/{ratio_reform.pk}/publish",
        {"parameters": [VOUCHER_RATIO], "effective_from": "2026-01-01", **BASIS},
        content_type="application/json", **auth,
    )
    assert again.status_code == 400 and again.json()["extra"]["field"] == "effective_from"


# --------------------------------------------------------------------------- bad input


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"parameters": ["no_such_ratio"]}, "parameters", "unknown parameter"),
        ({"parameters": ["municipal_ratio"]}, "parameters", "does not change"),
        ({"parameters": []}, "parameters", "choose the parameter"),
        ({"document_number": " "}, "document_number", "文号"),
        ({"article": ""}, "article", "article required"),
        ({"effective_from": None}, "effective_from", "effective date required"),
        ({"effective_from": dt.date(2000, 1, 1)}, "effective_from", "outside the policy"),
        ({"effective_until": EVE}, "effective_until", "before effective from"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    changes, field, words, ratio_reform, admin_root, old_ratio
):
    with pytest.raises(KechuangError) as exc:
        publish(ratio_reform, admin_root, **changes)
    assert exc.value.field == field and words in exc.value.message
    assert not ParameterPublication.objects.exists() and not AuditLog.objects.filter(
        action="parameter_publish"
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy_id", "name", "value", "words"),
    [
        ("voucher", VOUCHER_RATIO, "1.5", "between 0 and 1"),
        ("voucher", "enterprise_annual_cap", "100.001", "at most 2 decimals"),
        ("voucher", "team_min_core_members", "2.5", "whole number"),
        ("voucher", "enterprise_annual_cap", "-1", "negative"),
    ],
)
def test_a_value_of_the_wrong_type_or_range_is_refused(
    policy_id, name, value, words, staff_zhang, admin_root
):
    reform = reforms.reform_create(
        policy_id=policy_id, name="试算", overrides={name: value}, actor=staff_zhang, as_of=NEW_YEAR
    )
    with pytest.raises(KechuangError) as exc:
        publish(reform, admin_root)
    assert exc.value.field == name and words in exc.value.message
    assert not ParameterPublication.objects.exists()


@pytest.mark.django_db
def test_a_later_publication_ends_an_earlier_one_and_a_future_one_may_be_withdrawn(
    ratio_reform, admin_root, staff_zhang, old_ratio, new_ratio
):
    [first] = publish(ratio_reform, admin_root)
    later = reforms.reform_create(
        policy_id="voucher", name="再调整", overrides={VOUCHER_RATIO: "1"}, actor=staff_zhang,
        as_of=NEW_YEAR,
    )
    future = dt.date(2099, 1, 1)
    [second] = publish(later, admin_root, effective_from=future)
    assert in_force_value("voucher", VOUCHER_RATIO, future - dt.timedelta(days=1)) == new_ratio
    assert in_force_value("voucher", VOUCHER_RATIO, future) == 1
    with pytest.raises(KechuangError, match="publish a correction"):
        services_law.parameter_publication_withdraw(publication=first, reason="错", actor=admin_root)
    services_law.parameter_publication_withdraw(publication=second, reason="暂缓", actor=admin_root)
    assert in_force_value("voucher", VOUCHER_RATIO, future) == new_ratio
    assert AuditLog.objects.filter(action="parameter_withdraw", obj_id=str(second.pk)).exists()
    # Withdrawn, the day is free again.
    publish(later, admin_root, effective_from=future)


@pytest.mark.django_db
def test_the_cli_publishes_for_an_admin_only(ratio_reform, admin_root, staff_zhang, capsys):
    args = ["publish", str(ratio_reform.pk), "--parameters", VOUCHER_RATIO, "--from", "2026-01-01",
            "--document", BASIS["document_number"], "--article", BASIS["article"]]
    with pytest.raises(CommandError, match="refused"):
        call_command("reforms", *args, "--by", staff_zhang.username)
    assert not ParameterPublication.objects.exists()
    call_command("reforms", *args, "--by", admin_root.username)
    assert "published #" in capsys.readouterr().out
    call_command("reforms", "publications", "--policy", "voucher")
    assert "普科委〔2026〕1号" in capsys.readouterr().out


@pytest.fixture
def restore_language():
    yield
    # The page activated English in this thread; later tests read Chinese.
    translation.activate(settings.LANGUAGE_CODE)


@pytest.mark.django_db
def test_the_publish_form_reads_in_english(client, admin_root, ratio_reform, restore_language):
    client.force_login(admin_root)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get(f"/calculator/reforms/{ratio_reform.pk}/").content.decode()
    assert "Publish as the law in force" in page and "effective until (optional)" in page


@pytest.mark.django_db
def test_a_new_reform_starts_from_the_published_value(client, staff_zhang, admin_root, ratio_reform, new_ratio):
    publish(ratio_reform, admin_root)
    client.force_login(staff_zhang)
    page = client.get("/calculator/reforms/?policy=voucher&as_of=2026-01-01").content.decode()
    assert "普科委〔2026〕1号 第三条" in page and "自 2026-01-01 起" in page
    [row] = [p for p in reforms.reform_parameters("voucher", NEW_YEAR) if p["name"] == VOUCHER_RATIO]
    assert Decimal(row["value"]) == new_ratio and row["since"] == NEW_YEAR
    [old] = [p for p in reforms.reform_parameters("voucher", EVE) if p["name"] == VOUCHER_RATIO]
    assert Decimal(old["value"]) != new_ratio


@pytest.mark.django_db
def test_a_resumed_run_computes_again_a_policy_whose_law_changed_meanwhile(
    alice, staff_zhang, admin_root, reward_reform, immediate_tasks,
    django_capture_on_commit_callbacks,
):
    from kechuang.calculator.services_runs import mianshen_run_resume

    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
    run.refresh_from_db()
    old = run.results.get(credit_code=alice.credit_code).benefit
    # The worker stopped after storing the policy; then a value is published.
    MianshenRun.objects.filter(pk=run.pk).update(status=MianshenRun.Status.INTERRUPTED)
    [pub] = publish(reward_reform, admin_root, effective_from=AS_OF)
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_resume(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    assert run.results.get(credit_code=alice.credit_code).benefit == pub.value != old
    assert Decimal(run.parameters[HTE]["reward_amount"][0]["value"]) == pub.value


@pytest.mark.django_db
def test_only_an_admin_withdraws_on_the_page(client, ratio_reform, admin_root, staff_zhang):
    [pub] = publish(ratio_reform, admin_root, effective_from=dt.date(2099, 1, 1))
    client.force_login(staff_zhang)
    refused = client.post(f"/calculator/publications/{pub.pk}/withdraw/", {"reason": "暂缓"})
    assert refused.status_code == 403
    client.force_login(admin_root)
    done = client.post(f"/calculator/publications/{pub.pk}/withdraw/", {"reason": "暂缓"})
    assert done.status_code == 302
    pub.refresh_from_db()
    assert pub.withdrawn and pub.withdrawn_by == admin_root and pub.withdrawal_reason == "暂缓"
    assert law.policy_in_force("voucher") is get_policy("voucher")


@pytest.mark.django_db
def test_a_resume_that_dies_after_compiling_does_not_leave_the_old_law_marked_done(
    alice, staff_zhang, admin_root, reward_reform, immediate_tasks,
    django_capture_on_commit_callbacks, monkeypatch,
):
    """The new law's hashes are saved with the policy no longer done: a worker dying
    before the policy is stored again cannot leave old results under the new law."""
    from kechuang.calculator import services_runs

    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
    run.refresh_from_db()
    MianshenRun.objects.filter(pk=run.pk).update(status=MianshenRun.Status.INTERRUPTED)
    [pub] = publish(reward_reform, admin_root, effective_from=AS_OF)

    def worker_dies(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(runs, "insert_results", worker_dies)
    with django_capture_on_commit_callbacks(execute=True):
        services_runs.mianshen_run_resume(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.FAILED and "worker killed" in run.error
    assert run.policy_hashes[HTE] == law.policy_in_force(HTE).sha256
    assert HTE not in run.policies_done
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        services_runs.mianshen_run_resume(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    assert run.results.get(credit_code=alice.credit_code).benefit == pub.value


def test_an_open_ended_publication_gives_way_to_a_later_dated_value_of_the_file():
    from fractions import Fraction

    from kechuang.rules.policy import Parameter, TimelineEntry

    now = TimelineEntry(dt.date(2022, 1, 1), dt.date(2026, 12, 31), Fraction(3, 4), "file", 1)
    later = TimelineEntry(dt.date(2027, 1, 1), None, Fraction(17, 20), "file", 2)
    param = Parameter("ratio", None, "ratio", None, (now, later), 1)
    layered = law.layer_publication(
        param, value=Fraction(4, 5), start=dt.date(2026, 1, 1), until=None, article="published"
    )
    assert layered.at(dt.date(2025, 12, 31)).value == Fraction(3, 4)
    assert layered.at(dt.date(2026, 6, 1)).value == Fraction(4, 5)
    assert layered.at(dt.date(2027, 1, 1)).value == Fraction(17, 20)


@pytest.mark.parametrize("value", ["1E+20", "100000000000000000000", "12345678901234567"])
def test_a_value_with_too_many_integer_digits_is_refused(value):
    param = get_policy("voucher").parameters["enterprise_annual_cap"]
    with pytest.raises(KechuangError) as exc:
        services_law.check_value(param, value)
    assert exc.value.field == "enterprise_annual_cap" and "too many digits" in exc.value.message
