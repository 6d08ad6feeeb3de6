"""`kechuang rules …`: check, test, explain, print SQL for, and run policies (no Django).

Bad input (an unknown policy or dialect, malformed or missing facts, a bad date) ends with
one line on stderr, in Chinese and English, and exit code 2: never a traceback. Failing
checks or test cases end with exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from kechuang.rules.errors import RulesError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
ENGINES = ("duckdb", "spark")


class BadInput(Exception):
    """Input the command cannot work with: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage; one clear line is easier to read in a script log.
        raise BadInput(f"参数错误 bad arguments: {message} (see `{self.prog} -h`)")


def _date(text: str) -> dt.date:
    from kechuang.rules.facts import iso_date

    day = iso_date(text)
    if day is None:
        raise BadInput(f"日期无效 invalid date '{text}': expected YYYY-MM-DD")
    return day


def _policy(policy_id: str):
    from kechuang.rules import get_policy

    return get_policy(policy_id)


def _dialect(name: str) -> str:
    from kechuang.rules.compile.dialects import DIALECTS

    if name not in DIALECTS:
        raise BadInput(f"未知 SQL 方言 unknown dialect '{name}' (known: {', '.join(DIALECTS)})")
    return name


# ---------------------------------------------------------------- commands
def cmd_check(args: argparse.Namespace) -> int:
    from kechuang.rules.loader import load_policy
    from kechuang.rules.policy import POLICY_DIR

    files = [Path(f) for f in args.files] or [
        p for p in sorted(POLICY_DIR.glob("*.yaml")) if not p.name.endswith(".cases.yaml")
    ]
    for f in files:
        if not f.is_file():
            raise BadInput(f"找不到文件 file not found: {f}")
    # The static checks are optional: until they exist, checking means loading.
    checks = None
    if importlib.util.find_spec("kechuang.rules.checks") is not None:
        from kechuang.rules import checks
    problems = 0
    for f in files:
        try:
            policy = load_policy(f)
        except RulesError as e:
            print(str(e))
            problems += 1
            continue
        findings = checks.check_policy(policy) if checks is not None else []
        for finding in findings:
            print(f"{finding.path}:{finding.line or 1}: {finding.message}")
        problems += len(findings)
    print(f"{len(files)} 个文件 file(s), {problems} 个问题 problem(s)", file=sys.stderr)
    return EXIT_FAILED if problems else 0


def cmd_test(args: argparse.Namespace) -> int:
    from kechuang.rules import evaluate
    from kechuang.rules.cases import load_cases, mismatches
    from kechuang.rules.policy import POLICY_DIR

    directory = Path(args.dir) if args.dir else POLICY_DIR
    if not directory.is_dir():
        raise BadInput(f"找不到目录 directory not found: {directory}")
    total = failed = 0
    try:
        cases = list(load_cases(directory))
    except RulesError as e:
        print(str(e))
        return EXIT_FAILED
    for case in cases:
        total += 1
        where = f"{case.path}:{case.line or 1}"
        try:
            problems = mismatches(case.expected, evaluate(case.policy, case.facts, case.as_of).to_dict())
        except RulesError as e:
            problems = [str(e)]
        if problems:
            failed += 1
            print(f"{where}: {case.policy}: {case.name}: " + "; ".join(problems))
    print(f"{total} 个用例 case(s), {failed} 个失败 failed", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from kechuang.rules import evaluate

    as_of = _date(args.as_of)
    _policy(args.policy)
    path = Path(args.facts)
    try:
        # Numbers through their decimal text (RULES.md 0.5), never a binary float.
        facts = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        raise BadInput(f"找不到事实文件 facts file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"无法读取事实文件 cannot read facts file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(
            f"事实文件不是有效的 JSON facts file is not valid JSON: {path}:{e.lineno}: {e.msg}"
        ) from None
    decision = evaluate(args.policy, facts, as_of)
    print(decision.to_json(indent=2) if args.json else decision.explain(args.lang))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from kechuang.rules import compile_policy

    as_of = _date(args.as_of)
    dialect = _dialect(args.dialect)
    _policy(args.policy)
    print(compile_policy(args.policy, as_of, dialect).sql)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    as_of = _date(args.as_of)
    if args.engine not in ENGINES:
        raise BadInput(f"未知引擎 unknown engine '{args.engine}' (known: {', '.join(ENGINES)})")
    ids = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not ids:
        raise BadInput("没有政策 no policy given: --policies a,b")
    for pid in ids:
        _policy(pid).require_in_force(as_of)
    source = Path(args.input)
    if not source.exists():
        raise BadInput(f"找不到输入文件 input file not found: {source}")
    from tqdm import tqdm

    # delay: a run that fails at once (or takes under a second) prints no bar, only its line.
    with tqdm(total=2, desc="rules run", unit="step", file=sys.stderr, delay=0.5) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            if args.engine == "duckdb":
                from kechuang.rules.runners.duckdb_runner import run_file
            else:
                from kechuang.rules.runners.spark_runner import run_file
            fields = args.fields.split(",") if args.fields is not None else None
            count = run_file(ids, source, as_of, args.out, progress=progress, fields=fields)
        except (ValueError, OSError) as e:
            raise BadInput(_one_line(e)) from None
        except Exception as e:  # engine errors (bad Parquet, wrong column types)
            raise BadInput(f"运行失败 run failed ({args.engine}): {_one_line(e)}") from None
    print(f"{count} 行 rows → {args.out}", file=sys.stderr)
    return 0


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------- parser
def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kechuang rules", description="规则即代码 rules as code")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    s = sub.add_parser("check", help="load policy files and run the static checks")
    s.add_argument("files", nargs="*", metavar="FILE")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("test", help="run every *.cases.yaml")
    s.add_argument("--dir", help="folder of *.cases.yaml (default: the packaged policies)")
    s.set_defaults(func=cmd_test)

    s = sub.add_parser("explain", help="explain one enterprise's decision")
    s.add_argument("--policy", required=True)
    s.add_argument("--facts", required=True, metavar="FILE.json")
    s.add_argument("--as-of", required=True, metavar="DATE")
    s.add_argument("--lang", default="zh", choices=("zh", "en"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("sql", help="print the compiled SQL of a policy")
    s.add_argument("--policy", required=True)
    s.add_argument("--dialect", default="duckdb")
    s.add_argument("--as-of", required=True, metavar="DATE")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("run", help="run policies over a Parquet file of flat facts rows")
    s.add_argument("--policies", required=True, metavar="a,b")
    s.add_argument("--input", required=True, metavar="FILE.parquet")
    s.add_argument("--engine", default="duckdb")
    s.add_argument("--as-of", required=True, metavar="DATE")
    s.add_argument("--out", required=True, metavar="FILE.parquet")
    s.add_argument(
        "--fields",
        metavar="a,b",
        help="result fields to write (e.g. verdict,subsidy_amount or hte.score.total_range);"
        " default: every result field",
    )
    s.set_defaults(func=cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `kechuang rules` command; returns the exit code."""
    p = parser()
    try:
        args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
        if not getattr(args, "func", None):
            p.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return args.func(args)
    except BadInput as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except RulesError as e:
        # UnknownPolicy, MalformedFacts, PolicyFileError: their messages are one line.
        print(_one_line(e), file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
