"""The demo district: deterministic, valid, idempotent; logins printed and stable."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
from django.core.management import call_command
from stdnum.cn import uscc

from kechuang.accounts.models import AuditLog, User
from kechuang.registry.demo import demo_build, demo_parquet, generate
from kechuang.registry.facts import COLUMNS
from kechuang.registry.models import Enterprise, FiscalYear


def test_the_same_seed_gives_the_same_district():
    first = [(r.enterprise.credit_code, r.enterprise.name) for r in generate(count=50)]
    again = [(r.enterprise.credit_code, r.enterprise.name) for r in generate(count=50)]
    other = [(r.enterprise.credit_code, r.enterprise.name) for r in generate(count=50, seed=7)]
    assert first == again != other


def test_every_demo_credit_code_is_valid_and_unique():
    codes = [r.enterprise.credit_code for r in generate(count=2000)]
    assert len(set(codes)) == len(codes)
    assert all(uscc.is_valid(c) for c in codes)


def test_the_demo_district_has_the_sectors_and_the_gaps_a_real_one_has():
    records = list(generate(count=600))
    industries = {r.enterprise.industry for r in records}
    assert {"software", "manufacturing", "research_development", "internet_services"} <= industries
    assert any(r.enterprise.registration_date is None for r in records)
    assert any(fy.rd_expense_domestic is None for r in records for fy in r.fiscal_years)
    assert any(r.incidents for r in records)
    kinds = {c.kind for r in records for c in r.certifications}
    assert {"hte", "tsme", "little_giant"} <= kinds


def test_building_the_demo_twice_duplicates_nothing(db):
    assert demo_build(count=40) == 40
    counts = (Enterprise.objects.count(), FiscalYear.objects.count(), AuditLog.objects.count())
    assert demo_build(count=40) == 0
    assert counts == (
        Enterprise.objects.count(),
        FiscalYear.objects.count(),
        AuditLog.objects.count(),
    )


def test_the_demo_command_prints_the_same_logins_every_time(db, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("demo", count=30)
    first = capsys.readouterr().out
    call_command("demo", count=30)
    second = capsys.readouterr().out
    assert "already present" in second
    assert first.split("demo logins:")[1] == second.split("demo logins:")[1]
    alice = User.objects.get(username="ent_alice")
    bob = User.objects.get(username="ent_bob")
    assert alice.enterprise != bob.enterprise and alice.enterprise.industry == "software"
    password = next(line.split()[2] for line in first.splitlines() if "ent_alice" in line)
    assert alice.check_password(password)
    assert {u.role for u in User.objects.all()} == {
        "staff",
        "enterprise",
        "institution",
        "expert",
        "auditor",
    }


def test_setup_admin_prints_the_same_password_and_never_replaces_it(db, settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("setup_admin")
    first = capsys.readouterr().out
    call_command("setup_admin")
    assert capsys.readouterr().out.split()[-1] in first
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.role == "admin"
    admin.set_password("changed-by-the-admin-1")
    admin.save()
    call_command("setup_admin")
    assert "not shown" in capsys.readouterr().out
    admin.refresh_from_db()
    assert admin.check_password("changed-by-the-admin-1")


def test_the_parquet_writer_streams_flat_facts_rows_in_batches(tmp_path):
    out = tmp_path / "facts.parquet"
    n = demo_parquet(out=out, count=250, as_of=dt.date(2025, 6, 30), batch_size=100)
    table = pq.read_table(out)
    assert n == table.num_rows == 250
    assert table.column_names == list(COLUMNS)
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert table.column("as_of").to_pylist()[0] == 20250630
