"""Run results as people read them: verdicts in words, field lists that wrap."""

from __future__ import annotations

from django.utils import translation

from kechuang.calculator.templatetags.calculator_tags import (
    field_list,
    parameter_title,
    policy_title,
    verdict_label,
)


def test_a_verdict_reads_in_the_pages_language():
    with translation.override("zh-hans"):
        assert verdict_label("needs_data") == "需补充数据"
    with translation.override("en"):
        assert verdict_label("needs_data") == "Needs data"
    assert verdict_label("something_new") == "something_new"


def test_a_stored_field_list_reads_with_spaces_so_a_table_cell_can_wrap():
    assert field_list("financials.2024.sales_revenue,ip.class1_count,") == (
        "financials.2024.sales_revenue, ip.class1_count"
    )
    assert field_list("") == ""


def test_a_policy_reads_by_its_title_in_the_pages_language():
    with translation.override("zh-hans"):
        assert policy_title("hte") == "高新技术企业认定"
    with translation.override("en"):
        assert policy_title("hte").startswith("High")
    assert policy_title("retired_policy") == "retired_policy"


def test_the_facts_a_run_read_show_dates_as_dates_and_an_impossible_one_as_stored():
    import datetime as dt

    from kechuang.calculator.selectors_runs import facts_rows

    rows = facts_rows(
        {"registration_date": 20240229, "as_of": 20240230, "ip_class1_count": None},
        dt.date(2025, 6, 30),
    )
    shown = {name: value for name, _, value, _ in rows}
    assert shown == {"registration_date": "2024-02-29", "as_of": "20240230"}


def test_a_parameter_reads_by_its_title_in_the_pages_language():
    from kechuang.rules import get_policy

    name, parameter = next(iter(get_policy("voucher").parameters.items()))
    with translation.override("zh-hans"):
        assert parameter_title(name, "voucher") == parameter.title.zh != name
    with translation.override("en"):
        assert parameter_title(name, "voucher") == parameter.title.en
    assert parameter_title("no_such", "voucher") == "no_such"
