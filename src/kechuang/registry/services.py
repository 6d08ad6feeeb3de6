"""Everything that writes to the registry. Each change is audited with the
fields before and after (``accounts.services.audit_record``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from kechuang.accounts.services import audit_entries, audit_record
from kechuang.errors import KechuangError
from kechuang.registry import imports
from kechuang.registry.columns import Sheet
from kechuang.registry.imports import ParsedFile, RowError
from kechuang.registry.models import Certification, Enterprise, FiscalYear, IPAsset

#: Stay under SQLite's limit on query parameters when filtering by a list.
_CHUNK = 900


@dataclass
class ImportResult:
    ok: bool
    errors: list[RowError] = field(default_factory=list)
    #: entity -> {"created": n, "updated": n, "unchanged": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _fields(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


def _same(a: Any, b: Any) -> bool:
    # Decimal('1.0') == Decimal('1.00'); a date equals a date. None only equals None.
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) == Decimal(b)
    return a == b


# --- single-record services (pages and API) ---------------------------------


def enterprise_create(*, actor: Any, credit_code: str, name: str, **fields: Any) -> Enterprise:
    """Create an enterprise; refuses a bad or already registered credit code."""
    try:
        code = imports.parse_credit_code(credit_code)
    except ValueError as exc:
        raise KechuangError(str(exc), "credit_code") from None
    if Enterprise.objects.filter(credit_code=code).exists():
        raise KechuangError(
            "该统一社会信用代码已登记 / credit code already registered", "credit_code"
        )
    _check_industry(fields.get("industry_code"))
    with transaction.atomic():
        enterprise = Enterprise(credit_code=code, name=name, **fields)
        enterprise.full_clean()
        enterprise.save()
        audit_record(
            actor=actor,
            action="enterprise_create",
            obj_type="enterprise",
            obj_id=code,
            before=None,
            after=_fields(enterprise, ["name", *fields]),
        )
    return enterprise


def enterprise_update(*, actor: Any, enterprise: Enterprise, **changes: Any) -> Enterprise:
    """Change fields of an enterprise (not its credit code); audits what changed."""
    if "credit_code" in changes:
        raise KechuangError(
            "统一社会信用代码不可修改 / the credit code cannot change", "credit_code"
        )
    _check_industry(changes.get("industry_code"))
    with transaction.atomic():
        # Lock the row so two editors cannot both read the same "before".
        current = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        before = {
            k: getattr(current, k) for k, v in changes.items() if not _same(getattr(current, k), v)
        }
        for k, v in changes.items():
            setattr(current, k, v)
        if before:
            current.full_clean()
            current.save(update_fields=[*before, "updated_at"])
            audit_record(
                actor=actor,
                action="enterprise_update",
                obj_type="enterprise",
                obj_id=current.credit_code,
                before=before,
                after={k: changes[k] for k in before},
            )
    return current


def fiscal_year_set(*, actor: Any, enterprise: Enterprise, year: int, **figures: Any) -> FiscalYear:
    """Create or change one fiscal year's figures; None means unknown."""
    for name, value in figures.items():
        if isinstance(value, Decimal | int) and value < 0:
            raise KechuangError("金额不能为负数 / an amount cannot be negative", name)
    with transaction.atomic():
        fy, created = FiscalYear.objects.select_for_update().get_or_create(
            enterprise=enterprise, year=year
        )
        before = {k: getattr(fy, k) for k in figures if not _same(getattr(fy, k), figures[k])}
        for k, v in figures.items():
            setattr(fy, k, v)
        sci, total = fy.staff_sci_tech, fy.staff_total
        if sci is not None and total is not None and sci > total:
            raise KechuangError(
                "科技人员数大于职工总数 / S&T staff exceed staff total", "staff_sci_tech"
            )
        if created or before:
            fy.save()
            audit_record(
                actor=actor,
                action="fiscal_year_create" if created else "fiscal_year_update",
                obj_type="fiscal_year",
                obj_id=f"{enterprise.credit_code}/{year}",
                before=None if created else before,
                after=figures if created else {k: figures[k] for k in before},
            )
    return fy


def _check_industry(code: str | None) -> None:
    if code:
        try:
            imports.parse_industry(code)
        except ValueError as exc:
            raise KechuangError(str(exc), "industry_code") from None


# --- import ------------------------------------------------------------------


@dataclass
class _Plan:
    """What an import would write, computed before anything is written."""

    sheet: Sheet
    update_fields: list[str]
    create: list[Any] = field(default_factory=list)
    update: list[Any] = field(default_factory=list)
    audit: list[tuple[str, dict | None, dict | None]] = field(default_factory=list)
    unchanged: int = 0


def registry_import(
    *,
    file: Any,
    filename: str,
    actor: Any,
    progress: Callable[[int], None] | None = None,
    sheet: str | None = None,
) -> ImportResult:
    """Import a registry file all-or-nothing.

    Every row is checked first; on any problem nothing is written and the
    result lists every bad row. A good file upserts by credit code (fiscal
    years by code and year, IP by number, certificates by kind and number):
    importing the same file twice changes nothing and logs nothing the
    second time. Columns absent from the file are left as they are; a blank
    cell in a present column means unknown (NULL)."""
    parsed = imports.read_file(file=file, filename=filename, sheet=sheet, progress=progress)
    if parsed.errors:
        return ImportResult(ok=False, errors=parsed.errors)
    errors: list[RowError] = []
    codes = _enterprise_ids(parsed)
    plans = [
        _plan_enterprises(parsed, codes),
        _plan_fiscal_years(parsed, codes, errors),
        _plan_keyed(parsed, codes, errors, "ip", IPAsset, ("number",)),
        _plan_keyed(parsed, codes, errors, "certifications", Certification, ("kind", "number")),
    ]
    if errors:
        return ImportResult(ok=False, errors=errors)
    counts: dict[str, dict[str, int]] = {}
    with transaction.atomic():
        for plan in plans:
            if plan is None:
                continue
            _write(plan, codes, actor, filename)
            counts[plan.sheet.entity] = {
                "created": len(plan.create),
                "updated": len(plan.update),
                "unchanged": plan.unchanged,
            }
    return ImportResult(ok=True, counts=counts)


def _enterprise_ids(parsed: ParsedFile) -> dict[str, int | None]:
    """credit code -> enterprise id, for every code the file mentions
    (None: a new enterprise of this file, not yet created)."""
    mentioned: set[str] = set()
    for ps in parsed.sheets.values():
        mentioned.update(r["credit_code"] for _n, r in ps.rows)
    ids: dict[str, int | None] = {}
    for chunk in _chunks(sorted(mentioned)):
        ids.update(
            Enterprise.objects.filter(credit_code__in=chunk).values_list("credit_code", "id")
        )
    ent = parsed.sheets.get("enterprises")
    if ent:
        for _n, r in ent.rows:
            ids.setdefault(r["credit_code"], None)
    return ids


def _plan_enterprises(parsed: ParsedFile, codes: dict[str, int | None]) -> _Plan | None:
    ps = parsed.sheets.get("enterprises")
    if ps is None:
        return None
    names = [c.field for c in ps.columns if c.field != "credit_code"]
    plan = _Plan(ps.sheet, names)
    existing: dict[str, Enterprise] = {}
    known = [r["credit_code"] for _n, r in ps.rows if codes.get(r["credit_code"])]
    for chunk in _chunks(known):
        existing.update(
            (e.credit_code, e) for e in Enterprise.objects.filter(credit_code__in=chunk)
        )
    for _n, record in ps.rows:
        current = existing.get(record["credit_code"])
        values = {
            k: ("" if v is None and _is_text(Enterprise, k) else v) for k, v in record.items()
        }
        if current is None:
            plan.create.append(values)
            plan.audit.append((record["credit_code"], None, {k: values[k] for k in names}))
            continue
        before = {
            k: getattr(current, k) for k in names if not _same(getattr(current, k), values[k])
        }
        if not before:
            plan.unchanged += 1
            continue
        for k in names:
            setattr(current, k, values[k])
        plan.update.append(current)
        plan.audit.append((record["credit_code"], before, {k: values[k] for k in before}))
    return plan


def _is_text(model: type, name: str) -> bool:
    return model._meta.get_field(name).get_internal_type() in ("CharField", "TextField")


def _missing_enterprise(title: str, number: int, code: str) -> RowError:
    return RowError(
        title,
        number,
        "统一社会信用代码",
        code,
        "企业不在企业库中，也不在本文件的企业表中 / enterprise is neither registered nor in "
        "this file's enterprises sheet",
    )


def _plan_fiscal_years(
    parsed: ParsedFile, codes: dict[str, int | None], errors: list[RowError]
) -> _Plan | None:
    ps = parsed.sheets.get("fiscal_years")
    if ps is None:
        return None
    title = ps.sheet.zh
    names = [c.field for c in ps.columns if c.field not in ("credit_code", "year")]
    plan = _Plan(ps.sheet, names)
    ids = sorted({i for i in codes.values() if i})
    existing: dict[tuple[int, int], FiscalYear] = {}
    for chunk in _chunks(ids):
        existing.update(
            ((fy.enterprise_id, fy.year), fy)
            for fy in FiscalYear.objects.filter(enterprise_id__in=chunk)
        )
    for number, record in ps.rows:
        code = record["credit_code"]
        if code not in codes:
            errors.append(_missing_enterprise(title, number, code))
            continue
        ent_id = codes[code]
        current = existing.get((ent_id, record["year"])) if ent_id else None
        values = {k: record[k] for k in names}
        # The merged row must hold: a file may bring only one of the two head counts.
        merged = {
            **(_fields(current, ["staff_total", "staff_sci_tech"]) if current else {}),
            **values,
        }
        sci, total = merged.get("staff_sci_tech"), merged.get("staff_total")
        if sci is not None and total is not None and sci > total:
            errors.append(
                RowError(
                    title,
                    number,
                    "科技人员数",
                    str(sci),
                    f"科技人员数大于职工总数（{total}） / S&T staff exceed staff total ({total})",
                )
            )
            continue
        key = f"{code}/{record['year']}"
        if current is None:
            plan.create.append((code, {"year": record["year"], **values}))
            plan.audit.append((key, None, values))
            continue
        before = {
            k: getattr(current, k) for k in names if not _same(getattr(current, k), values[k])
        }
        if not before:
            plan.unchanged += 1
            continue
        for k in names:
            setattr(current, k, values[k])
        plan.update.append((code, current))
        plan.audit.append((key, before, {k: values[k] for k in before}))
    return plan


def _plan_keyed(
    parsed: ParsedFile,
    codes: dict[str, int | None],
    errors: list[RowError],
    entity: str,
    model: type,
    key: tuple[str, ...],
) -> _Plan | None:
    ps = parsed.sheets.get(entity)
    if ps is None:
        return None
    title = ps.sheet.zh
    names = [c.field for c in ps.columns if c.field not in ("credit_code", *key)]
    plan = _Plan(ps.sheet, names)
    numbers = sorted({r["number"] for _n, r in ps.rows})
    existing: dict[tuple, Any] = {}
    for chunk in _chunks(numbers):
        for obj in model.objects.filter(number__in=chunk).select_related("enterprise"):
            existing[tuple(getattr(obj, k) for k in key)] = obj
    for number, record in ps.rows:
        code = record["credit_code"]
        if code not in codes:
            errors.append(_missing_enterprise(title, number, code))
            continue
        k = tuple(record[f] for f in key)
        current = existing.get(k)
        if current is not None and current.enterprise.credit_code != code:
            errors.append(
                RowError(
                    title,
                    number,
                    "/".join(c.zh for c in ps.sheet.columns if c.field in key),
                    "/".join(str(x) for x in k),
                    f"已登记在另一企业名下（{current.enterprise.credit_code}） / already "
                    f"registered to another enterprise",
                )
            )
            continue
        values = {f: ("" if v is None and _is_text(model, f) else v) for f, v in record.items()}
        values.pop("credit_code")
        if model is IPAsset and values.get("used_in_earlier_hte_application") is None:
            values["used_in_earlier_hte_application"] = False
        audit_key = f"{code}/{'/'.join(str(x) for x in k)}"
        if current is None:
            plan.create.append((code, values))
            plan.audit.append((audit_key, None, {f: values[f] for f in names}))
            continue
        before = {
            f: getattr(current, f) for f in names if not _same(getattr(current, f), values[f])
        }
        if not before:
            plan.unchanged += 1
            continue
        for f in names:
            setattr(current, f, values[f])
        plan.update.append((code, current))
        plan.audit.append((audit_key, before, {f: values[f] for f in before}))
    return plan


def _insert(model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT new rows with executemany.

    Django's bulk_create prepares every value through its field (a few
    microseconds each); at a 100,000-enterprise import that is most of the
    time. Values here are already clean (parsed and checked), and both
    drivers adapt Decimal, date and bool themselves."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: (f.get_default() if f.has_default() else None) for f in fields}
    for f in fields:
        if f.attname not in rows[0] and defaults[f.attname] is None and not f.null:
            defaults[f.attname] = (
                "" if f.get_internal_type() in ("CharField", "TextField") else None
            )
    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    names = [f.attname for f in fields]
    with connection.cursor() as cursor:
        for batch in _chunks(rows, 5000):
            cursor.executemany(
                sql, [tuple(row.get(n, defaults[n]) for n in names) for row in batch]
            )


def _write(plan: _Plan, codes: dict[str, int | None], actor: Any, filename: str) -> None:
    entity = plan.sheet.entity
    if entity == "enterprises":
        now = timezone.now()
        _insert(Enterprise, [{**v, "created_at": now, "updated_at": now} for v in plan.create])
        if plan.update:
            now = timezone.now()
            for e in plan.update:
                e.updated_at = now  # bulk_update does not touch auto_now fields
            Enterprise.objects.bulk_update(
                plan.update, [*plan.update_fields, "updated_at"], batch_size=500
            )
        # Fill in the ids of the enterprises this file created, for the child sheets.
        new_codes = [v["credit_code"] for v in plan.create]
        for chunk in _chunks(new_codes):
            codes.update(
                Enterprise.objects.filter(credit_code__in=chunk).values_list("credit_code", "id")
            )
        obj_type = "enterprise"
    else:
        model = {"fiscal_years": FiscalYear, "ip": IPAsset, "certifications": Certification}[entity]
        _insert(model, [{**values, "enterprise_id": codes[code]} for code, values in plan.create])
        if plan.update and plan.update_fields:
            model.objects.bulk_update(
                [obj for _c, obj in plan.update], plan.update_fields, batch_size=500
            )
        obj_type = {
            "fiscal_years": "fiscal_year",
            "ip": "ip_asset",
            "certifications": "certification",
        }[entity]
    creates = [c for c in plan.audit if c[1] is None]
    updates = [c for c in plan.audit if c[1] is not None]
    note = f"import {filename}"
    if creates:
        audit_entries(
            actor=actor, action=f"{obj_type}_create", obj_type=obj_type, changes=creates, note=note
        )
    if updates:
        audit_entries(
            actor=actor, action=f"{obj_type}_update", obj_type=obj_type, changes=updates, note=note
        )


__all__ = [
    "ImportResult",
    "RowError",
    "enterprise_create",
    "enterprise_update",
    "fiscal_year_set",
    "registry_import",
]
