"""A deterministic demo district (演示区): plausible enterprises of 普陀区.

The same seed gives the same district, byte for byte: the generator draws only
from its own ``random.Random(seed)`` and never reads the clock. It yields
unsaved model instances, which ``demo_build`` saves in bulk and
``demo_parquet`` turns into flat facts rows without a database.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from stdnum.cn import uscc

from kechuang.registry.models import (
    Award,
    Certification,
    Enterprise,
    FiscalYear,
    Incident,
    IPAsset,
    ListEntry,
    RDInstitution,
    StandardLed,
)
from kechuang.registry.selectors import EnterpriseRecords

DEFAULT_COUNT = 3000
DEFAULT_SEED = 20240101
#: The demo's last closed fiscal year: fixed, so the district does not change with the clock.
LAST_FISCAL_YEAR = 2025
DISTRICT = "普陀区"
#: 310107 = 上海市普陀区 (the administrative division code inside the credit code).
DIVISION_CODE = "310107"
STREETS = (
    "长寿路街道",
    "曹杨新村街道",
    "长风新村街道",
    "宜川路街道",
    "甘泉路街道",
    "石泉路街道",
    "万里街道",
    "真如镇街道",
    "桃浦镇",
)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# (sector, weight, industry codes, name words, high-tech field, R&D intensity range)
SECTORS: tuple[tuple[str, int, tuple[str, ...], tuple[str, ...], str, tuple[float, float]], ...] = (
    (
        "software",
        34,
        ("6511", "6513", "6519", "6531", "6560", "6540"),
        ("软件科技", "信息技术", "数据科技", "智能科技", "网络科技"),
        "电子信息",
        (0.03, 0.22),
    ),
    (
        "rd_services",
        14,
        ("7320", "7310", "7340", "7452", "7519"),
        ("科技发展", "检测技术", "生物科技", "新材料科技", "工程技术"),
        "高技术服务",
        (0.04, 0.30),
    ),
    (
        "cybersecurity",
        8,
        ("6440",),
        ("网络安全技术", "信息安全科技", "数据安全技术"),
        "电子信息",
        (0.06, 0.25),
    ),
    (
        "ic_design",
        6,
        ("6520",),
        ("集成电路设计", "微电子科技", "芯片技术"),
        "电子信息",
        (0.08, 0.35),
    ),
    (
        "manufacturing",
        16,
        ("3973", "4011", "3581", "2720", "3421", "3976", "4014"),
        ("智能装备", "精密机械", "医疗器械", "光电科技", "制药", "自动化设备"),
        "先进制造与自动化",
        (0.01, 0.08),
    ),
    (
        "other",
        22,
        ("5176", "7520", "7530", "6210", "7010", "7540", "5273", "9013"),
        ("商贸", "知识产权代理", "科技咨询", "餐饮管理", "置业", "创业孵化器管理", "电子商务"),
        "",
        (0.0, 0.02),
    ),
)
_BRAND = "华宏中创联智达博瑞新恒鼎泰源科云启明汇德兴诚睿安远航天盛辰越洲海川峰合益普嘉"
_FORMS = ("有限公司", "有限公司", "有限公司", "股份有限公司")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
_DOMAINS = ("电子信息", "生物与新医药", "新材料", "高技术服务", "先进制造与自动化")


def credit_code(index: int, rng: random.Random) -> str:
    """A valid 统一社会信用代码 for the index-th enterprise (unique per index).

    91 = 工商 registered enterprise; 310107 = 普陀区; the 9-character
    organisation code is ``MA`` plus the index in the USCC alphabet."""
    digits = []
    n = index
    for _ in range(6):
        n, r = divmod(n, 31)
        digits.append(_USCC_ALPHABET[r])
    body = "91" + DIVISION_CODE + "MA" + "".join(reversed(digits)) + rng.choice("0123456789")
    return body + uscc.calc_check_digit(body)


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    # Whole yuan drawn as an integer, so no float ever reaches a Decimal.
    return Decimal(rng.randint(int(low), int(high)))


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def generate(
    *, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED, start: int = 0
) -> Iterator[EnterpriseRecords]:
    """Yield ``count`` enterprises (unsaved) with their records, deterministically.

    ``start`` skips the first enterprises so batches can be generated apart;
    each enterprise draws from its own generator seeded by (seed, index)."""
    weights = [s[1] for s in SECTORS]
    last = LAST_FISCAL_YEAR
    for index in range(start, start + count):
        rng = random.Random(f"{seed}:{index}")
        # The first two enterprises are the ones the demo enterprise users act
        # for: a software company and an IC design house, as in the fixtures.
        chosen = rng.choices(SECTORS, weights)[0]
        if index < 2:
            chosen = SECTORS[0] if index == 0 else SECTORS[3]
        sector, _w, industry_codes, words, field, (rd_low, rd_high) = chosen
        tech = sector != "other"
        reg = _date(rng, dt.date(1998, 1, 1), dt.date(last, 10, 31))
        name = (
            "上海"
            + rng.choice(_BRAND)
            + rng.choice(_BRAND)
            + rng.choice(words)
            + rng.choice(_FORMS)
        )
        incomplete = rng.random() < 0.08
        e = Enterprise(
            credit_code=credit_code(index, rng),
            name=name,
            registration_date=None if incomplete and rng.random() < 0.3 else reg,
            district=DISTRICT,
            street=rng.choice(STREETS),
            industry_code=rng.choice(industry_codes),
            high_tech_field=field or (rng.choice(_DOMAINS) if rng.random() < 0.1 else ""),
            address=f"{DISTRICT}{rng.choice(STREETS)[:2]}路{rng.randint(1, 1999)}号",
            contact_name=rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(("", _GIVEN[0])),
            contact_phone=f"021-{rng.randint(52000000, 62999999)}",
            contact_email=f"contact{index}@example.cn",
            registered_in_mainland=True,
            registered_in_shanghai=True,
            resident_enterprise=None if incomplete and rng.random() < 0.5 else True,
            accounting_sound=None if incomplete else rng.random() < 0.96,
            audit_based_cit_collection=None if incomplete else rng.random() < 0.93,
            tech_field_supported=(None if rng.random() < 0.4 else rng.random() < 0.85)
            if tech
            else False,
            industry_restricted_or_eliminated=None if incomplete else rng.random() < 0.01,
            standards_participation=None if rng.random() < 0.5 else rng.random() < 0.1,
            is_ic_or_machine_tool_enterprise=sector == "ic_design"
            or _machine_tool_flag(industry_codes, rng),
            ip_surveyed=None if incomplete else (index < 2 or rng.random() < 0.9),
            compliance_checked=None if incomplete else rng.random() < 0.95,
        )
        records = EnterpriseRecords(enterprise=e)

        # Fiscal years since registration (at most six), growing with noise.
        first = max(reg.year, last - 5)
        size = rng.choice((2e6, 8e6, 3e7, 1.2e8, 4e8)) * (0.5 + rng.random())
        staff = max(3, int(size / rng.uniform(3e5, 1.2e6)))
        growth = rng.uniform(-0.1, 0.4)
        net_share = rng.uniform(0.2, 0.7)
        for year in range(first, last + 1):
            if incomplete and rng.random() < 0.25:
                continue  # a year nobody reported
            size *= 1 + growth + rng.uniform(-0.1, 0.1)
            sales = _money(rng, size * 0.9, size * 1.1)
            rd = _money(rng, float(sales) * rd_low, float(sales) * rd_high)
            assets = _money(rng, size * 0.6, size * 1.4)
            staff = max(3, int(staff * (1 + growth / 2 + rng.uniform(-0.05, 0.05))))
            sci = int(staff * rng.uniform(0.05, 0.6 if tech else 0.1))
            total_income = sales + _money(rng, 0, float(sales) * 0.05)
            fy = FiscalYear(
                year=year,
                sales_revenue=sales,
                total_income=total_income,
                high_tech_income=_money(rng, 0, float(total_income) * (0.95 if tech else 0.2)),
                rd_expense=rd,
                rd_expense_domestic=_money(rng, float(rd) * 0.7, float(rd)),
                total_cost_expense=_money(rng, float(sales) * 0.7, float(sales) * 1.05),
                total_assets=assets,
                total_liabilities=_money(rng, 0, float(assets) * (1 - net_share)),
                staff_total=Decimal(staff),
                staff_sci_tech=Decimal(sci),
                conversions=rng.choice((0, 0, 1, 1, 2, 3, 4, 5, 6)) if tech else 0,
            )
            if incomplete:
                for name_ in ("rd_expense_domestic", "high_tech_income", "staff_sci_tech"):
                    if rng.random() < 0.4:
                        setattr(fy, name_, None)
            records.fiscal_years.append(fy)

        # IP assets.
        n_ip = rng.choice((0, 0, 1, 2, 3, 5, 8, 12)) if tech else rng.choice((0, 0, 0, 1))
        for k in range(n_ip):
            if sector == "software" or sector == "cybersecurity":
                ip_type = rng.choice(("software_copyright",) * 4 + ("invention_patent",))
            elif sector == "ic_design":
                ip_type = rng.choice(("ic_layout_design", "invention_patent", "software_copyright"))
            else:
                ip_type = rng.choice(
                    ("invention_patent", "utility_model", "utility_model", "design_patent")
                )
            applied = _date(rng, max(reg, dt.date(2008, 1, 1)), dt.date(last, 12, 31))
            granted = applied + dt.timedelta(days=rng.randint(60, 900))
            status = "valid"
            expiry = None
            roll = rng.random()
            if granted > dt.date(last + 1, 6, 30):
                status, granted = "pending", None
            elif roll < 0.08:
                status = "lapsed"
                expiry = granted + dt.timedelta(days=rng.randint(200, 2000))
            elif roll < 0.1:
                status = "transferred"
            records.ip_assets.append(
                IPAsset(
                    ip_type=ip_type,
                    number=_ip_number(ip_type, applied, index, k),
                    title=f"一种{rng.choice(words)}相关的{('方法', '系统', '装置', '平台')[k % 4]}",
                    status=status,
                    application_date=applied,
                    grant_date=granted,
                    expiry_date=expiry,
                    self_developed=None if rng.random() < 0.05 else rng.random() < 0.85,
                    used_in_earlier_hte_application=rng.random() < 0.2,
                )
            )

        # Certifications: 高企 (three years), 科小 (per year), 小巨人.
        if tech and rng.random() < 0.3:
            issued = _date(rng, dt.date(last - 3, 10, 1), dt.date(last, 12, 20))
            records.certifications.append(
                Certification(
                    kind="hte",
                    number=f"GR{issued.year}3100{index:06d}",
                    valid_from=issued,
                    valid_to=_three_years(issued),
                )
            )
        if tech and rng.random() < 0.4:
            for year in range(max(reg.year + 1, last - 1), last + 2):
                if rng.random() < 0.7:
                    records.certifications.append(
                        Certification(
                            kind="tsme",
                            number=f"{year}310107{index:06d}",
                            valid_from=dt.date(year, 4, rng.randint(1, 28)),
                            valid_to=dt.date(year, 12, 31),
                        )
                    )
        if tech and rng.random() < 0.03:
            issued = dt.date(last - rng.randint(0, 2), 11, 15)
            records.certifications.append(
                Certification(
                    kind="little_giant",
                    number=f"XJR{issued.year}{index:06d}",
                    valid_from=issued,
                    valid_to=_three_years(issued),
                )
            )
        if tech and rng.random() < 0.01:
            records.awards.append(
                Award(
                    kind="national_sci_award",
                    grade="二等奖",
                    unit_rank=rng.randint(1, 6),
                    awarded_on=_date(rng, dt.date(last - 8, 1, 1), dt.date(last, 12, 31)),
                    title="关键技术研究及产业化",
                )
            )
        if tech and rng.random() < 0.03:
            records.awards.append(
                Award(
                    kind="shanghai_sci_award",
                    grade=rng.choice(("一等奖", "二等奖", "三等奖")),
                    unit_rank=rng.randint(1, 5),
                    awarded_on=_date(rng, dt.date(last - 8, 1, 1), dt.date(last, 12, 31)),
                    title="技术创新与应用",
                )
            )
        if tech and rng.random() < 0.05:
            records.rd_institutions.append(
                RDInstitution(
                    name=f"{name[:6]}工程技术研究中心",
                    level=rng.choice(("provincial", "municipal", "district", "national")),
                    recognized_on=_date(rng, dt.date(2010, 1, 1), dt.date(last, 12, 31)),
                )
            )
        if tech and rng.random() < 0.06:
            records.standards.append(
                StandardLed(
                    code=f"{rng.choice(('GB/T', 'SJ/T', 'T/SHKX'))} {rng.randint(10000, 45000)}-{rng.randint(2015, last)}",
                    title="技术规范",
                    level=rng.choice(("national", "industry", "group", "local")),
                    role=rng.choice(("led", "participated")),
                    published_on=_date(rng, dt.date(2015, 1, 1), dt.date(last, 12, 31)),
                )
            )
        if rng.random() < 0.02:
            records.incidents.append(
                Incident(
                    kind=rng.choice(
                        (
                            "major_safety",
                            "major_quality",
                            "serious_environmental",
                            "research_misconduct",
                        )
                    ),
                    occurred_on=_date(rng, dt.date(last - 2, 1, 1), dt.date(last + 1, 3, 31)),
                    description="演示数据",
                )
            )
        if rng.random() < 0.025:
            listed = _date(rng, dt.date(last - 3, 1, 1), dt.date(last + 1, 3, 31))
            records.list_entries.append(
                ListEntry(
                    kind="abnormal_operations" if rng.random() < 0.85 else "serious_dishonesty",
                    listed_on=listed,
                    removed_on=listed + dt.timedelta(days=rng.randint(30, 400))
                    if rng.random() < 0.5
                    else None,
                    reason="通过登记的住所或者经营场所无法联系",
                )
            )
        yield records


def _machine_tool_flag(industry_codes: tuple[str, ...], rng: random.Random) -> bool | None:
    # 3421 金属切削机床制造 is the one machine-tool class the demo uses.
    return True if "3421" in industry_codes and rng.random() < 0.2 else None


def _three_years(issued: dt.date) -> dt.date:
    """Last day of a three-year certificate (the corresponding day, 《民法典》第二百零二条)."""
    try:
        return issued.replace(year=issued.year + 3)
    except ValueError:
        return issued.replace(year=issued.year + 3, day=28)


def _ip_number(ip_type: str, applied: dt.date, index: int, k: int) -> str:
    seq = index * 20 + k  # unique across the district
    if ip_type == "software_copyright":
        return f"{applied.year}SR{seq:07d}"
    if ip_type == "ic_layout_design":
        return f"BS.{applied.year % 100:02d}5{seq:07d}"
    kind = {"invention_patent": 1, "utility_model": 2, "design_patent": 3}[ip_type]
    return f"ZL{applied.year}{kind}{seq:07d}"


def demo_present(*, seed: int = DEFAULT_SEED) -> bool:
    """True when the demo district's first enterprise is already in the registry."""
    first = next(generate(count=1, seed=seed))
    return Enterprise.objects.filter(credit_code=first.enterprise.credit_code).exists()


#: (username, role, index of the enterprise it acts for, who it is)
DEMO_USERS: tuple[tuple[str, str, int | None, str], ...] = (
    ("staff_zhang", "staff", None, "科委工作人员 commission staff"),
    ("ent_alice", "enterprise", 0, "企业用户 enterprise user"),
    ("ent_bob", "enterprise", 1, "企业用户 enterprise user"),
    ("inst_lab", "institution", None, "服务机构 testing lab"),
    ("expert_wang", "expert", None, "评审专家 expert reviewer"),
    ("auditor_li", "auditor", None, "审计 auditor"),
)


def demo_logins(*, seed: int = DEFAULT_SEED) -> list[dict]:
    """Create the demo users that are missing and return every demo login.

    Generated passwords are kept in the data folder (demo-logins.json) so a
    re-run prints the same ones; an existing user's password is never changed."""
    import json
    import os
    import secrets

    from django.conf import settings

    from kechuang.accounts.models import User

    store = Path(settings.DATA_DIR) / "demo-logins.json"
    saved: dict[str, str] = json.loads(store.read_text("utf-8")) if store.exists() else {}
    firsts = [r.enterprise.credit_code for r in generate(count=2, seed=seed)]
    logins = []
    for username, role, index, note in DEMO_USERS:
        enterprise = None
        if index is not None:
            enterprise = Enterprise.objects.filter(credit_code=firsts[index]).first()
            if enterprise is None:
                continue  # the demo district was not built
            note = f"{note}: {enterprise.name} {enterprise.credit_code}"
        user = User.objects.filter(username=username).first()
        if user is None:
            saved[username] = secrets.token_urlsafe(9)
            User.objects.create_user(
                username=username, password=saved[username], role=role, enterprise=enterprise
            )
        password = saved.get(username, "")
        if not password or not user_has_password(username, password):
            password = "(unchanged, not shown)"
        logins.append({"username": username, "role": role, "password": password, "note": note})
    store.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only: written first and restricted after, the passwords would be
    # readable by others for a moment.
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(saved, indent=1))
    store.chmod(0o600)  # a file from before keeps its old mode through O_CREAT
    return logins


def user_has_password(username: str, password: str) -> bool:
    from kechuang.accounts.models import User

    user = User.objects.filter(username=username).first()
    return bool(user and user.check_password(password))


def demo_build(
    *,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Save the demo district in bulk (one transaction); returns the enterprises
    written. Enterprises already present (by credit code) are left untouched,
    so building twice duplicates nothing and loses nothing."""
    from django.db import transaction

    from kechuang.accounts.services import audit_entries

    written = 0
    with transaction.atomic():
        batch: list[EnterpriseRecords] = []
        for records in generate(count=count, seed=seed):
            batch.append(records)
            if len(batch) >= batch_size:
                written += _save_batch(batch, audit_entries)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            written += _save_batch(batch, audit_entries)
            if progress:
                progress(len(batch))
    return written


def _save_batch(batch: list[EnterpriseRecords], audit_entries: Callable) -> int:
    codes = [r.enterprise.credit_code for r in batch]
    existing = set(
        Enterprise.objects.filter(credit_code__in=codes).values_list("credit_code", flat=True)
    )
    new = [r for r in batch if r.enterprise.credit_code not in existing]
    Enterprise.objects.bulk_create([r.enterprise for r in new])
    ids = dict(
        Enterprise.objects.filter(
            credit_code__in=[r.enterprise.credit_code for r in new]
        ).values_list("credit_code", "id")
    )
    children: dict[type, list] = {}
    for r in new:
        ent_id = ids[r.enterprise.credit_code]
        r.enterprise.pk = ent_id
        for attr in (
            "fiscal_years",
            "ip_assets",
            "certifications",
            "awards",
            "rd_institutions",
            "standards",
            "incidents",
            "list_entries",
        ):
            for obj in getattr(r, attr):
                obj.enterprise_id = ent_id
                children.setdefault(type(obj), []).append(obj)
    for model, objs in children.items():
        model.objects.bulk_create(objs, batch_size=2000)
    audit_entries(
        actor=None,
        action="enterprise_create",
        obj_type="enterprise",
        changes=[(r.enterprise.credit_code, None, {"name": r.enterprise.name}) for r in new],
        note="demo district",
    )
    return len(new)


def demo_parquet(
    *,
    out: Path,
    count: int,
    as_of: dt.date,
    seed: int = DEFAULT_SEED,
    batch_size: int = 20000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the flat facts rows of a synthetic registry to Parquet, streaming
    ``batch_size`` rows at a time so memory stays bounded whatever ``count``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kechuang.registry.facts import COLUMN_TYPES
    from kechuang.registry.selectors import nested_facts
    from kechuang.rules.facts import flatten

    arrow_types = {
        "text": pa.string(),
        "date": pa.int32(),
        "bool": pa.bool_(),
        "count": pa.int64(),
        "money": pa.decimal128(20, 2),
        "number": pa.decimal128(20, 2),
        "share": pa.decimal128(20, 12),
    }
    schema = pa.schema([(name, arrow_types[typ]) for name, typ in COLUMN_TYPES.items()])
    scale = {"money": Decimal("0.01"), "number": Decimal("0.01"), "share": Decimal("1e-12")}
    written = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for start in range(0, count, batch_size):
            n = min(batch_size, count - start)
            rows = []
            for records in generate(count=n, seed=seed, start=start):
                row = flatten(nested_facts(records, as_of), as_of)
                for name, typ in COLUMN_TYPES.items():
                    if typ in scale and row[name] is not None:
                        row[name] = Decimal(row[name]).quantize(scale[typ])
                rows.append(row)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            written += n
            if progress:
                progress(n)
    return written
