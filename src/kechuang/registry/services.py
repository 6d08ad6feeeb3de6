"""Everything that writes to the registry. Each change is audited with the
fields before and after (``accounts.services.audit_record``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from kechuang.accounts.services import audit_entries, audit_record
from kechuang.errors import KechuangError
from kechuang.registry import imports
from kechuang.registry.imports import RowError
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
    for name, value in changes.items():
        if value is None and not Enterprise._meta.get_field(name).null:
            # (blank fields take "", not null: the database refuses null for them)
            raise KechuangError(f"{name} 不能为 null / {name} cannot be null", name)
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
            # Only what changes is checked: a value stored before a check existed (a
            # contact phone of "无") must not block every other correction.
            unchanged = [f.name for f in Enterprise._meta.fields if f.name not in before]
            current.full_clean(exclude=unchanged)
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


def _fits(model: type, name: str, value: Decimal | int) -> None:
    """Refuse a figure its column cannot hold exactly: stored anyway, SQLite would hand
    back a value no page or export could read (PostgreSQL refuses it with a 500), and a
    fraction of a fen would be rounded differently by each database."""
    field = model._meta.get_field(name)
    if isinstance(value, int) and not isinstance(value, bool):
        if value > 2**31 - 1:
            # A count the database column cannot hold (nor any enterprise has).
            raise KechuangError("数字过大 / the number is too large", name)
        return
    if isinstance(value, Decimal) and getattr(field, "max_digits", None):
        places = field.decimal_places
        if value != value.quantize(Decimal(1).scaleb(-places)):
            raise KechuangError(
                f"最多 {places} 位小数 / at most {places} decimal places", name
            )
        if value and value.adjusted() >= field.max_digits - places:
            raise KechuangError("数字过大 / the number is too large", name)


def fiscal_year_set(
    *, actor: Any, enterprise: Enterprise, year: int, new: bool = False, **figures: Any
) -> FiscalYear:
    """Create or change one fiscal year's figures; None means unknown. ``new``: only
    create (a form for adding a year must not blank out the one already there)."""
    for name, value in figures.items():
        if isinstance(value, Decimal | int) and value < 0:
            raise KechuangError("金额不能为负数 / an amount cannot be negative", name)
        if value is not None:
            _fits(FiscalYear, name, value)
    with transaction.atomic():
        fy, created = FiscalYear.objects.select_for_update().get_or_create(
            enterprise=enterprise, year=year
        )
        if new and not created:
            raise KechuangError(
                f"{year} 年度已存在，请在该年度页修改 / the year {year} already exists: "
                "change it on its own page",
                "year",
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


class _Rejected(Exception):
    """Raised inside the import transaction to roll it back."""


def registry_import(
    *,
    file: Any,
    filename: str,
    actor: Any,
    progress: Callable[[int], None] | None = None,
    sheet: str | None = None,
) -> ImportResult:
    """Import a registry file all-or-nothing.

    Every row is checked; on any problem nothing is written and the result
    lists every bad row. A good file upserts by credit code (fiscal years by
    code and year, IP by number, certificates by kind and number): importing
    the same file twice changes nothing and logs nothing the second time.
    Columns absent from the file are left as they are; a blank cell in a
    present column means unknown (NULL).

    Rows are checked and written in batches inside one transaction, which is
    rolled back at the end if any problem was found: memory stays bounded
    whatever the file's size, and the outcome is the same as checking first."""
    errors: list[RowError] = []
    counts: dict[str, dict[str, int]] = {}
    try:
        with transaction.atomic():
            for table in imports.iter_tables(
                file=file, filename=filename, errors=errors, sheet=sheet, progress=progress
            ):
                writer = _TableWriter(table, actor=actor, filename=filename, errors=errors)
                batch: list[tuple[int, dict[str, Any]]] = []
                for row in table.rows:
                    batch.append(row)
                    if len(batch) >= _BATCH:
                        writer.write(batch)
                        batch = []
                writer.write(batch)
                counts[table.sheet.entity] = writer.counts
            if errors:
                raise _Rejected
    except _Rejected:
        return ImportResult(ok=False, errors=errors)
    return ImportResult(ok=True, counts=counts)


_BATCH = 2000
_MODELS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    # entity: (model, audit obj_type, natural key within the model)
    "enterprises": (Enterprise, "enterprise", ("credit_code",)),
    "fiscal_years": (FiscalYear, "fiscal_year", ("enterprise_id", "year")),
    "ip": (IPAsset, "ip_asset", ("number",)),
    "certifications": (Certification, "certification", ("kind", "number")),
}


_USED_BEFORE = "used_in_earlier_hte_application"


class _TableWriter:
    """Upserts one table's rows batch by batch, auditing each change."""

    def __init__(self, table: imports.Table, *, actor: Any, filename: str, errors: list[RowError]):
        self.table = table
        self.entity = table.sheet.entity
        self.model, self.obj_type, self.key = _MODELS[self.entity]
        self.actor = actor
        self.note = f"import {filename}"
        self.errors = errors
        self.title = table.title
        sheet_key = table.sheet.key
        self.fields = [c.field for c in table.columns if c.field not in ("credit_code", *sheet_key)]
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}
        self.text_fields = {
            f.attname
            for f in self.model._meta.concrete_fields
            if f.get_internal_type() in ("CharField", "TextField")
        }
        self.codes: dict[str, int] = {}

    def _clean(self, record: dict[str, Any]) -> dict[str, Any]:
        # A blank text cell is stored as "" (Django's convention for text), others as NULL.
        values = {
            k: ("" if v is None and k in self.text_fields else v)
            for k, v in record.items()
            if k != "credit_code" or self.entity == "enterprises"
        }
        return values

    def _enterprise_ids(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        wanted = sorted({r["credit_code"] for _n, r in batch} - self.codes.keys())
        for chunk in _chunks(wanted):
            self.codes.update(
                Enterprise.objects.filter(credit_code__in=chunk).values_list("credit_code", "id")
            )

    def _existing(self, keys: list[tuple]) -> dict[tuple, Any]:
        found: dict[tuple, Any] = {}
        if self.entity == "enterprises":
            for chunk in _chunks([k[0] for k in keys]):
                found.update(
                    ((e.credit_code,), e) for e in Enterprise.objects.filter(credit_code__in=chunk)
                )
        elif self.entity == "fiscal_years":
            for chunk in _chunks(sorted({k[0] for k in keys})):
                found.update(
                    ((fy.enterprise_id, fy.year), fy)
                    for fy in FiscalYear.objects.filter(enterprise_id__in=chunk)
                )
        else:
            for chunk in _chunks(sorted({k[-1] for k in keys})):
                for obj in self.model.objects.filter(number__in=chunk):
                    found[tuple(getattr(obj, k) for k in self.key)] = obj
        return found

    def write(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        if self.entity != "enterprises":
            self._enterprise_ids(batch)
        rows: list[tuple[int, str, dict[str, Any]]] = []
        for number, record in batch:
            code = record["credit_code"]
            values = self._clean(record)
            if self.entity != "enterprises":
                if code not in self.codes:
                    self.errors.append(_missing_enterprise(self.title, number, code))
                    continue
                values["enterprise_id"] = self.codes[code]
            rows.append((number, code, values))
        existing = self._existing([tuple(v[k] for k in self.key) for _n, _c, v in rows])
        creates: list[dict[str, Any]] = []
        updates: list[Any] = []
        audit_new: list[tuple[str, None, dict]] = []
        audit_changed: list[tuple[str, dict, dict]] = []
        for number, code, values in rows:
            key = tuple(values[k] for k in self.key)
            current = existing.get(key)
            moved = current is not None and self.entity in ("ip", "certifications")
            if moved and current.enterprise_id != values["enterprise_id"]:
                self.errors.append(self._owned_elsewhere(number, key, current))
                continue
            if self.entity == "fiscal_years" and not self._staff_consistent(
                number, current, values
            ):
                continue
            if self.entity == "certifications" and not self._dates_ordered(
                number, current, values
            ):
                continue
            if self.model is IPAsset and values.get(_USED_BEFORE) is None:
                # A blank cell says nothing: a new asset is "not used before" (the
                # column's default), a known one keeps what was recorded.
                values[_USED_BEFORE] = getattr(current, _USED_BEFORE, False)
            audit_id = self._audit_id(code, values)
            if current is None:
                creates.append(values)
                audit_new.append((audit_id, None, {f: values[f] for f in self.fields}))
                continue
            before = {
                f: getattr(current, f)
                for f in self.fields
                if not _same(getattr(current, f), values[f])
            }
            if not before:
                self.counts["unchanged"] += 1
                continue
            for f in self.fields:
                setattr(current, f, values[f])
            updates.append(current)
            audit_changed.append((audit_id, before, {f: values[f] for f in before}))
        if self.entity == "enterprises":
            now = timezone.now()
            for values in creates:
                values["created_at"] = values["updated_at"] = now
            for obj in updates:
                obj.updated_at = now  # bulk_update does not touch auto_now fields
        _insert(self.model, creates)
        if updates and self.fields:
            extra = ["updated_at"] if self.entity == "enterprises" else []
            self.model.objects.bulk_update(updates, [*self.fields, *extra], batch_size=500)
        for action, changes in (("create", audit_new), ("update", audit_changed)):
            if changes:
                audit_entries(
                    actor=self.actor,
                    action=f"{self.obj_type}_{action}",
                    obj_type=self.obj_type,
                    changes=changes,
                    note=self.note,
                )
        self.counts["created"] += len(creates)
        self.counts["updated"] += len(updates)

    def _audit_id(self, code: str, values: dict[str, Any]) -> str:
        # The enterprise's code first, so its history finds its records' entries.
        if self.entity == "enterprises":
            return code
        rest = [values["year"]] if self.entity == "fiscal_years" else [values[k] for k in self.key]
        return "/".join([code, *map(str, rest)])

    def _staff_consistent(self, number: int, current: Any, values: dict[str, Any]) -> bool:
        # The merged row must hold: a file may bring only one of the two head counts.
        merged = {
            "staff_total": getattr(current, "staff_total", None),
            "staff_sci_tech": getattr(current, "staff_sci_tech", None),
        }
        merged.update({k: values[k] for k in merged if k in values})
        sci, total = merged["staff_sci_tech"], merged["staff_total"]
        if sci is not None and total is not None and sci > total:
            self.errors.append(
                RowError(
                    self.title,
                    number,
                    "科技人员数",
                    imports.plain_number(sci),
                    f"科技人员数大于职工总数（{imports.plain_number(total)}） / S&T staff exceed staff total "
                    f"({imports.plain_number(total)})",
                )
            )
            return False
        return True

    def _dates_ordered(self, number: int, current: Any, values: dict[str, Any]) -> bool:
        # The merged certificate must hold: a file may bring only its issue date.
        start = values.get("valid_from", getattr(current, "valid_from", None))
        end = values.get("valid_to", getattr(current, "valid_to", None))
        if start is not None and end is not None and end < start:
            self.errors.append(
                RowError(
                    self.title,
                    number,
                    "有效期至",
                    end.isoformat(),
                    f"有效期至早于发证日期（{start.isoformat()}） / valid until is before the "
                    f"issue date ({start.isoformat()})",
                )
            )
            return False
        return True

    def _owned_elsewhere(self, number: int, key: tuple, current: Any) -> RowError:
        owner = (
            Enterprise.objects.filter(pk=current.enterprise_id)
            .values_list("credit_code", flat=True)
            .first()
        )
        return RowError(
            self.title,
            number,
            "/".join(c.zh for c in self.table.sheet.columns if c.field in self.key),
            "/".join(str(x) for x in key),
            f"已登记在另一企业名下（{owner}） / already registered to another enterprise",
        )


def _missing_enterprise(title: str, number: int, code: str) -> RowError:
    return RowError(
        title,
        number,
        "统一社会信用代码",
        code,
        "企业不在企业库中，也不在本文件的企业表中 / enterprise is neither registered nor in "
        "this file's enterprises sheet",
    )


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
    pick = itemgetter(*[f.attname for f in fields])
    with connection.cursor() as cursor:
        for batch in _chunks(rows, 5000):
            cursor.executemany(sql, [pick({**defaults, **row}) for row in batch])


__all__ = [
    "ImportResult",
    "RowError",
    "enterprise_create",
    "enterprise_update",
    "fiscal_year_set",
    "registry_import",
]
