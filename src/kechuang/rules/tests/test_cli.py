"""`kechuang rules …`: every command, and bad input ending in one line and exit code 2."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from kechuang.rules import evaluate, evaluate_flat, flatten, policy_ids
from kechuang.rules.cases import load_cases
from kechuang.rules.cli import main
from kechuang.rules.runners.arrow import rows_to_arrow

VOUCHER_FACTS = {
    "applicant_type": "enterprise",
    "scheme": "district_service_voucher",
    "contract_amount": 100000,
    "order_date": "2024-03-01",
    "voucher_used_this_year": 0,
    "registered_in_shanghai": True,
    "is_tsme": True,
    "service_provider_on_platform": True,
    "service_category_eligible": True,
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *words: str) -> str:
    assert code == 2
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0]
    return lines[0]


@pytest.fixture
def facts_file(tmp_path):
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(VOUCHER_FACTS), encoding="utf-8")
    return path


def test_explain_text_zh_and_en(capsys, facts_file):
    code, out, _ = run(capsys, "explain", "--policy", "voucher", "--facts", str(facts_file), "--as-of", "2024-06-01")
    assert code == 0 and "结论: 符合" in out
    code, out, _ = run(
        capsys, "explain", "--policy", "voucher", "--facts", str(facts_file), "--as-of", "2024-06-01", "--lang", "en"
    )
    assert code == 0 and "Verdict: eligible" in out


def test_explain_json_equals_evaluate(capsys, facts_file):
    code, out, _ = run(
        capsys, "explain", "--policy", "voucher", "--facts", str(facts_file), "--as-of", "2024-06-01", "--json"
    )
    assert code == 0
    assert json.loads(out) == json.loads(evaluate("voucher", VOUCHER_FACTS, "2024-06-01").to_json())
    assert json.loads(out)["subsidy_amount"] == 75000


@pytest.mark.parametrize("dialect", ["duckdb", "sqlite", "postgres", "spark"])
def test_sql_every_dialect(capsys, dialect):
    for pid in policy_ids():
        code, out, _ = run(capsys, "sql", "--policy", pid, "--dialect", dialect, "--as-of", "2024-06-01")
        assert code == 0 and out.startswith("WITH ")


def test_check_all_policies(capsys):
    code, out, err = run(capsys, "check")
    assert code == 0, out
    assert f"{len(policy_ids())} 个文件" in err


def test_check_reports_file_and_line(capsys, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: broken\ntitle: {zh: a, en: b}\ninputs:\n  x: {type: money}\n  x: {type: money}\n")
    code, out, _ = run(capsys, "check", str(bad))
    assert code == 1
    assert str(bad) in out and "Traceback" not in out


def test_check_missing_file(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "check", str(tmp_path / "nope.yaml")), "not found")


def test_test_passes_on_the_packaged_cases(capsys):
    code, out, err = run(capsys, "test")
    assert code == 0, out
    assert f"{len(list(load_cases()))} 个用例" in err


def test_test_reports_failures_with_file_and_line(capsys, tmp_path):
    cases = tmp_path / "voucher.cases.yaml"
    cases.write_text(
        "policy: voucher\ncases:\n"
        "  - name: right\n    as_of: 2024-06-01\n    facts: {}\n    expected: {verdict: needs_data}\n"
        "  - name: wrong on purpose\n    as_of: 2024-06-01\n    facts: {}\n    expected: {verdict: eligible}\n"
    )
    code, out, err = run(capsys, "test", "--dir", str(tmp_path))
    assert code == 1
    assert f"{cases}:7: voucher: wrong on purpose: verdict: expected 'eligible'" in out
    assert "right" not in out.replace("wrong", "")
    assert "2 个用例 case(s), 1 个失败" in err


@pytest.mark.parametrize("command", ["check", "test"])
def test_an_impossible_date_in_a_file_is_named_with_its_line(capsys, tmp_path, command):
    # YAML reads 2023-02-30 as a date and fails to build it: one line, not a traceback.
    if command == "check":
        path = tmp_path / "bad.yaml"
        path.write_text("id: bad\ntitle: {zh: a, en: b}\neffective: {from: 2023-02-30}\n")
        code, out, err = run(capsys, "check", str(path))
    else:
        path = tmp_path / "voucher.cases.yaml"
        path.write_text("- name: x\n  as_of: 2023-02-30\n  facts: {}\n  expected: {}\n")
        code, out, err = run(capsys, "test", "--dir", str(tmp_path))
    assert code != 0 and "Traceback" not in out + err
    line = 3 if command == "check" else 2
    assert f"{path}:{line}: not a date: 2023-02-30" in out + err


def _write_rows(path, as_of):
    rows = [
        flatten(c.facts, as_of, entity_id=f"c{i}")
        for i, c in enumerate(load_cases()) if c.policy == "voucher" and c.runs_on_sql
    ]
    pq.write_table(rows_to_arrow(rows), path)
    return rows


def test_run_duckdb(capsys, tmp_path):
    as_of = dt.date(2024, 6, 1)
    rows = _write_rows(tmp_path / "in.parquet", as_of)
    out_path = tmp_path / "out.parquet"
    code, _, err = run(
        capsys, "run", "--policies", "voucher", "--input", str(tmp_path / "in.parquet"),
        "--engine", "duckdb", "--as-of", "2024-06-01", "--out", str(out_path),
    )
    assert code == 0, err
    result = pq.read_table(out_path).to_pylist()
    assert [r["entity_id"] for r in result] == [r["entity_id"] for r in rows]
    for row, res in zip(rows, result, strict=True):
        assert res["voucher__verdict"] == evaluate_flat("voucher", row, as_of).verdict


def test_run_file_reports_progress(tmp_path):
    from kechuang.rules.runners.duckdb_runner import run_file

    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    seen = []
    n = run_file(["voucher"], tmp_path / "in.parquet", dt.date(2024, 6, 1), tmp_path / "o.parquet",
                 progress=lambda done, total: seen.append((done, total)))
    assert n == pq.read_metadata(tmp_path / "o.parquet").num_rows > 0
    assert seen[-1] == (2, 2)


def _run_pack(capsys, tmp_path, name, *extra, engine="duckdb"):
    out = tmp_path / f"{name}.parquet"
    code, _, err = run(
        capsys, "run", "--policies", "voucher,hte", "--input", str(tmp_path / "in.parquet"),
        "--engine", engine, "--as-of", "2024-06-01", "--out", str(out), *extra,
    )
    assert code == 0, err
    return sorted(pq.read_table(out).to_pylist(), key=lambda r: r["entity_id"])


def test_run_fields_writes_the_named_fields_with_the_full_runs_values(capsys, tmp_path):
    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    full = _run_pack(capsys, tmp_path, "full")
    some = _run_pack(
        capsys, tmp_path, "some", "--fields", "verdict, subsidy_amount,hte.score.total_range"
    )
    assert list(some[0]) == [
        "entity_id", "voucher__verdict", "voucher__subsidy_amount",
        "hte__verdict", "hte__score__total_range__min", "hte__score__total_range__max",
    ]
    assert len(some) == len(full) > 0
    for narrow, whole in zip(some, full, strict=True):
        assert narrow == {k: whole[k] for k in narrow}
    # A whole object takes every column under it; the other policy has no such field.
    score = _run_pack(capsys, tmp_path, "score", "--fields", "score")
    assert set(score[0]) == {"entity_id"} | {k for k in full[0] if k.startswith("hte__score__")}
    one = _run_pack(capsys, tmp_path, "one", "--fields", "voucher,hte.verdict")
    assert set(one[0]) == {"entity_id", "hte__verdict"} | {k for k in full[0] if k.startswith("voucher__")}


def _provenance(path) -> dict:
    meta = pq.read_metadata(path).metadata
    return {k.decode()[9:]: json.loads(v) for k, v in meta.items() if k.startswith(b"kechuang.")}


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_run_output_records_how_it_was_made_and_reruns_to_the_same_results(
    capsys, tmp_path, engine
):
    import kechuang
    from kechuang.rules import get_policy

    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    first = _run_pack(capsys, tmp_path, "first", "--fields", "verdict,subsidy_amount", engine=engine)
    made = _provenance(tmp_path / "first.parquet")
    assert made["as_of"] == "2024-06-01"
    assert made["policies"] == [
        {"id": pid, "sha256": get_policy(pid).sha256, "file": f"{pid}.yaml"}
        for pid in ("voucher", "hte")
    ]
    assert made["fields"] == ["verdict", "subsidy_amount"]
    assert made["engine"].startswith(engine + " ")
    assert made["version"] == kechuang.__version__
    assert made["input"] == {"name": "in.parquet", "bytes": (tmp_path / "in.parquet").stat().st_size}
    # What the file records is enough to make it again.
    again = _run_pack(
        capsys, tmp_path, "again", "--fields", ",".join(made["fields"]), engine=engine
    )
    assert again == first


@pytest.mark.parametrize(
    "fields, words",
    [
        ("verdict,subsidy", ["未知结果字段", "unknown result field 'subsidy'", "subsidy_amount"]),
        ("hte.subsidy_amount", ["unknown result field 'hte.subsidy_amount'"]),
        (" , ", ["没有字段", "no field given"]),
    ],
)
def test_run_refuses_an_unknown_field_and_writes_nothing(capsys, tmp_path, fields, words):
    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    out = tmp_path / "out.parquet"
    result = run(
        capsys, "run", "--policies", "voucher,hte", "--input", str(tmp_path / "in.parquet"),
        "--as-of", "2024-06-01", "--out", str(out), "--fields", fields,
    )
    assert_one_line_error(*result, *words)
    assert not out.exists()


@pytest.mark.spark
def test_run_fields_on_spark_equals_duckdb(capsys, tmp_path):
    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    fields = ("--fields", "verdict,missing_fields")
    duck = _run_pack(capsys, tmp_path, "duck", *fields)
    spark = _run_pack(capsys, tmp_path, "spark", *fields, engine="spark")
    assert list(duck[0]) == [
        "entity_id", "voucher__verdict", "voucher__missing_fields",
        "hte__verdict", "hte__missing_fields",
    ]
    assert spark == duck


@pytest.mark.spark
def test_run_spark_equals_duckdb(capsys, tmp_path):
    _write_rows(tmp_path / "in.parquet", dt.date(2024, 6, 1))
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"{engine}.parquet"
        code, _, err = run(
            capsys, "run", "--policies", "voucher,district_hte_first_reward",
            "--input", str(tmp_path / "in.parquet"),
            "--engine", engine, "--as-of", "2024-06-01", "--out", str(outs[engine]),
        )
        assert code == 0, err
    duck = sorted(pq.read_table(outs["duckdb"]).to_pylist(), key=lambda r: r["entity_id"])
    spark = sorted(pq.read_table(outs["spark"]).to_pylist(), key=lambda r: r["entity_id"])
    assert len(duck) == len(spark)
    for a, b in zip(duck, spark, strict=True):
        for key in a:
            assert (a[key] is None and b[key] is None) or str(a[key]).rstrip("0").rstrip(".") == str(
                b[key]
            ).rstrip("0").rstrip("."), (key, a, b)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["explain", "--policy", "nope", "--facts", "{facts}", "--as-of", "2024-06-01"], ["未知政策", "unknown policy"]),
        (["explain", "--policy", "voucher", "--facts", "{bad_json}", "--as-of", "2024-06-01"], ["not valid JSON"]),
        (["explain", "--policy", "voucher", "--facts", "{malformed}", "--as-of", "2024-06-01"], ["malformed facts"]),
        (["explain", "--policy", "voucher", "--facts", "{missing}", "--as-of", "2024-06-01"], ["not found"]),
        (["explain", "--policy", "voucher", "--facts", "{facts}", "--as-of", "2024-02-30"], ["日期无效", "invalid date"]),
        (["explain", "--policy", "voucher"], ["bad arguments"]),
        (["explain", "--policy", "hte", "--facts", "{facts}", "--as-of", "2015-12-31"], ["没有生效的规则", "no rules in force", "2016-01-01"]),
        (["sql", "--policy", "hte", "--dialect", "duckdb", "--as-of", "2015-12-31"], ["no rules in force", "2016-01-01"]),
        (["run", "--policies", "voucher,hte", "--input", "{facts}", "--as-of", "2015-12-31", "--out", "{out}"], ["政策 hte", "no rules in force"]),
        (["sql", "--policy", "voucher", "--dialect", "oracle", "--as-of", "2024-01-01"], ["unknown dialect"]),
        (["sql", "--policy", "nope", "--dialect", "duckdb", "--as-of", "2024-01-01"], ["unknown policy"]),
        (["sql", "--policy", "voucher", "--dialect", "duckdb", "--as-of", "yesterday"], ["invalid date"]),
        (["sql", "--policy", "voucher", "--dialect", "duckdb", "--as-of", "20240101"], ["invalid date", "YYYY-MM-DD"]),
        (["run", "--policies", "voucher,nope", "--input", "{facts}", "--as-of", "2024-06-01", "--out", "{out}"], ["unknown policy"]),
        (["run", "--policies", "voucher", "--input", "{missing}", "--as-of", "2024-06-01", "--out", "{out}"], ["not found"]),
        (["run", "--policies", "voucher", "--input", "{facts}", "--engine", "oracle", "--as-of", "2024-06-01", "--out", "{out}"], ["unknown engine"]),
        (["run", "--policies", "voucher", "--input", "{bad_json}", "--as-of", "2024-06-01", "--out", "{out}"], ["unsupported input format"]),
        (["frobnicate"], ["bad arguments"]),
    ],
)
def test_bad_input_one_line_exit_2(capsys, tmp_path, facts_file, argv, words):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "malformed.json").write_text(json.dumps([VOUCHER_FACTS]), encoding="utf-8")
    names = {
        "facts": str(facts_file),
        "bad_json": str(tmp_path / "bad.json"),
        "malformed": str(tmp_path / "malformed.json"),
        "missing": str(tmp_path / "missing.json"),
        "out": str(tmp_path / "out.parquet"),
    }
    argv = [a.format(**names) for a in argv]
    assert_one_line_error(*run(capsys, *argv), *words)


def test_run_corrupt_parquet(capsys, tmp_path):
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(b"not parquet at all")
    code, out, err = run(
        capsys, "run", "--policies", "voucher", "--input", str(bad), "--as-of", "2024-06-01",
        "--out", str(tmp_path / "o.parquet"),
    )
    assert code == 2 and "Traceback" not in err
    assert_one_line_error(code, out, err, "运行失败", "run failed")


def test_run_file_all_policies_in_one_pass(tmp_path):
    """Several policies run in one query (no join): each policy's columns equal its own
    query's, and each verdict equals the interpreter's, row by row."""
    import duckdb

    from kechuang.rules import get_policy
    from kechuang.rules.compile.to_sql import compile_sql
    from kechuang.rules.runners.duckdb_runner import run_file

    as_of = dt.date(2025, 6, 30)
    rows = [flatten(c.facts, as_of, entity_id=f"c{i}") for i, c in enumerate(load_cases()) if c.runs_on_sql]
    src = tmp_path / "in.parquet"
    pq.write_table(rows_to_arrow(rows), src)
    ids = policy_ids()
    out = tmp_path / "all.parquet"
    assert run_file(ids, src, as_of, out) == len(rows)
    result = {r["entity_id"]: r for r in pq.read_table(out).to_pylist()}
    con = duckdb.connect()
    for pid in ids:
        single = compile_sql(get_policy(pid), as_of, "duckdb", table=f"read_parquet('{src}')")
        for alone in con.sql(single.sql).to_arrow_table().to_pylist():
            packed = result[alone["entity_id"]]
            for col in single.columns:
                a, b = packed[f"{pid}__{col}"], alone[col]
                assert a == b or (a is None and b != b), (pid, alone["entity_id"], col, a, b)
        for row in rows:
            assert result[row["entity_id"]][f"{pid}__verdict"] == (
                evaluate_flat(pid, row, as_of).verdict
            ), (pid, row["entity_id"])


VOUCHER_CSV = (
    "entity_id,scheme,applicant_type,registered_in_shanghai,is_tsme,order_date,contract_amount,"
    "service_provider_on_platform,service_category_eligible,voucher_used_this_year\n"
    "A,shanghai_municipal,enterprise,true,true,20240501,1000.5,true,true,0\n"
    "B,shanghai_municipal,enterprise,true,true,20240501,{amount},true,true,0\n"
)


def test_run_refuses_amounts_finer_than_a_fen_instead_of_rounding_them(capsys, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    src.write_text(VOUCHER_CSV.format(amount="1234.567"), encoding="utf-8")
    argv = ["run", "--policies", "voucher", "--input", str(src), "--as-of", "2024-06-01", "--out", str(out)]
    assert_one_line_error(*run(capsys, *argv), "contract_amount", "2 decimal places")
    assert not out.exists()

    src.write_text(VOUCHER_CSV.format(amount="1234.56"), encoding="utf-8")
    code, _, _ = run(capsys, *argv)
    assert code == 0
    got = {r["entity_id"]: r["voucher__subsidy_amount"] for r in pq.read_table(out).to_pylist()}
    assert str(got["B"]) == "617.28"  # 50 % of 1234.56, exactly


def test_run_reads_a_finer_decimal_column_whose_values_are_whole_fen(tmp_path):
    import pyarrow as pa

    from kechuang.rules.runners.duckdb_runner import run_file

    as_of = dt.date(2024, 6, 1)
    rows = [flatten(c.facts, as_of, entity_id=f"c{i}") for i, c in enumerate(load_cases())
            if c.policy == "voucher" and c.runs_on_sql]
    table = rows_to_arrow(rows)
    i = table.schema.get_field_index("contract_amount")
    table = table.set_column(i, "contract_amount", table.column(i).cast(pa.decimal128(20, 4)))
    pq.write_table(table, tmp_path / "in.parquet")
    assert run_file(["voucher"], tmp_path / "in.parquet", as_of, tmp_path / "o.parquet") == len(rows)


def test_run_refuses_an_empty_csv_and_writes_nothing(capsys, tmp_path):
    src, out = tmp_path / "empty.csv", tmp_path / "out.parquet"
    src.write_text("", encoding="utf-8")
    argv = ["run", "--policies", "voucher", "--input", str(src), "--as-of", "2024-06-01", "--out", str(out)]
    assert_one_line_error(*run(capsys, *argv), "no rows")
    assert not out.exists()


def _hostile(tmp_path, change) -> tuple:
    """The voucher case rows as of 2024-06-01, with one column changed by ``change``."""
    import pyarrow as pa

    as_of = dt.date(2024, 6, 1)
    rows = [flatten(c.facts, as_of, entity_id=f"c{i}") for i, c in enumerate(load_cases())
            if c.policy in ("voucher", "hte") and c.runs_on_sql]
    table = change(rows_to_arrow(rows), pa)
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    return path


def _set(name, values_type):
    def change(table, pa):
        i = table.schema.get_field_index(name)
        column = values_type(table.num_rows, pa)
        return table.set_column(i, name, column) if i >= 0 else table.append_column(name, column)
    return change


def _drop(name):
    return lambda table, pa: table.drop_columns([name])


@pytest.mark.parametrize(
    "change, words",
    [
        (_set("ip_class1_count", lambda n, pa: pa.array([2.5] * n)), ["ip_class1_count", "whole numbers"]),
        (_set("registration_date", lambda n, pa: pa.array([20240230] * n)), ["registration_date", "do not exist"]),
        (_set("as_of", lambda n, pa: pa.array([20230630] * n)), ["as of another date"]),
        (_set("industry", lambda n, pa: pa.array([["a"]] * n)), ["industry", "must be text"]),
        (_set("registration_date", lambda n, pa: pa.array([dt.date(2020, 1, 1)] * n)), ["yyyymmdd"]),
        (_drop("entity_id"), ["entity_id"]),
        (_drop("registration_year"), ["registration_year", "flatten"]),
        (_set("entity_id", lambda n, pa: pa.array([None] * n, pa.string())), ["entity_id"]),
        (_set("entity_id", lambda n, pa: pa.array(["c1", "c1"] + [f"r{i}" for i in range(n - 2)])),
         ["same entity_id", "c1 ×2", "1 行多余"]),
    ],
)
def test_run_refuses_a_file_it_must_not_decide_on_and_keeps_the_last_results(
    capsys, tmp_path, change, words
):
    source = _hostile(tmp_path, change)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"results of the last good run")
    argv = ["run", "--policies", "voucher,hte", "--input", str(source), "--as-of", "2024-06-01",
            "--out", str(out)]
    message = assert_one_line_error(*run(capsys, *argv), *words)
    if "same entity_id" not in words:
        assert "extra rows" not in message, "one refusal's message, not another's"
    assert out.read_bytes() == b"results of the last good run"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_run_reads_a_csv_whose_ids_are_digits(tmp_path):
    from kechuang.rules.runners.duckdb_runner import run_file

    as_of = dt.date(2024, 6, 1)
    rows = [flatten(VOUCHER_FACTS, as_of, entity_id=str(i)) for i in (1, 2, 3)]
    table = rows_to_arrow(rows)
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, tmp_path / "in.csv")
    assert run_file(["voucher"], tmp_path / "in.csv", as_of, tmp_path / "o.parquet") == 3
    got = {r["entity_id"]: r["voucher__verdict"] for r in pq.read_table(tmp_path / "o.parquet").to_pylist()}
    assert got == {"1": "eligible", "2": "eligible", "3": "eligible"}


def test_run_refuses_to_write_over_its_input_or_to_name_a_policy_twice(capsys, tmp_path):
    source = _hostile(tmp_path, lambda table, pa: table)
    before = source.read_bytes()
    argv = ["run", "--policies", "voucher", "--input", str(source), "--as-of", "2024-06-01"]
    assert_one_line_error(*run(capsys, *argv, "--out", str(source)), "--out is the input")
    assert source.read_bytes() == before
    assert_one_line_error(
        *run(capsys, "run", "--policies", "hte,hte", "--input", str(source),
             "--as-of", "2024-06-01", "--out", str(tmp_path / "o.parquet")),
        "named twice", "hte",
    )
    assert_one_line_error(*run(capsys, *argv, "--out", str(tmp_path / "o.csv")), "*.parquet")
    garbage = tmp_path / "garbage.arrow"
    garbage.write_bytes(b"ARROW1" + b"\x00" * 64)
    assert_one_line_error(
        *run(capsys, "run", "--policies", "voucher", "--input", str(garbage),
             "--as-of", "2024-06-01", "--out", str(tmp_path / "o.parquet")),
        "not a valid Arrow file",
    )


@pytest.mark.spark
def test_run_all_four_packs_on_spark_equals_duckdb(capsys, tmp_path):
    as_of = dt.date(2025, 6, 30)
    rows = [flatten(c.facts, as_of, entity_id=f"c{i}") for i, c in enumerate(load_cases())
            if c.runs_on_sql and c.policy in ("hte", "tsme", "rd_super_deduction", "voucher")]
    pq.write_table(rows_to_arrow(rows), tmp_path / "in.parquet")
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"{engine}.parquet"
        code, _, err = run(
            capsys, "run", "--policies", "hte,tsme,rd_super_deduction,voucher",
            "--input", str(tmp_path / "in.parquet"), "--engine", engine,
            "--as-of", "2025-06-30", "--out", str(outs[engine]), "--fields", "verdict",
        )
        assert code == 0, err
    duck = sorted(pq.read_table(outs["duckdb"]).to_pylist(), key=lambda r: r["entity_id"])
    spark = sorted(pq.read_table(outs["spark"]).to_pylist(), key=lambda r: r["entity_id"])
    assert len(duck) == len(rows) and spark == duck
