"""Chinese by default, English on request, and a complete, compiled English catalog."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

LOCALE = Path(__file__).resolve().parents[1] / "locale"


def read_po(path: Path) -> list[dict[str, object]]:
    """The entries of a .po file: msgid, msgid_plural, msgstr list, flags."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        flags: set[str] = set()
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                flags.update(f.strip() for f in line[2:].split(","))
            elif m := re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) (".*")$', line):
                key = m.group(1)
                fields[key] = [ast.literal_eval(m.group(2))]
            elif line.startswith('"') and key:
                fields[key].append(ast.literal_eval(line))
        if "msgid" in fields and "".join(fields["msgid"]):
            entries.append(
                {
                    "msgid": "".join(fields["msgid"]),
                    "plural": "".join(fields.get("msgid_plural", [])) or None,
                    "msgstr": [
                        "".join(v) for k, v in sorted(fields.items()) if k.startswith("msgstr")
                    ],
                    "flags": flags,
                }
            )
    return entries


def test_pages_are_in_chinese_by_default(client):
    page = client.get(reverse("accounts:login")).content.decode()
    assert "登录" in page and 'lang="zh-hans"' in page


def test_an_english_browser_still_gets_chinese_until_the_user_switches(client):
    page = client.get(reverse("accounts:login"), headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "用户名" in page.content.decode()


def test_the_language_switch_turns_the_pages_english(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/accounts/login/"})
    assert response.status_code == 302
    page = client.get(reverse("accounts:login")).content.decode()
    assert "Log in" in page and "Username" in page and 'lang="en"' in page
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert "用户名" in client.get(reverse("accounts:login")).content.decode()


def test_the_language_switch_needs_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("set_language"), {"language": "en"}).status_code == 403


def test_every_string_has_an_english_translation():
    entries = read_po(LOCALE / "en" / "LC_MESSAGES" / "django.po")
    assert len(entries) > 100
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"]) or "fuzzy" in e["flags"]]
    assert untranslated == []


@pytest.mark.parametrize("language", ["en", "zh_Hans"])
def test_the_committed_mo_files_match_their_po_files(language):
    # A fresh machine has no gettext to compile them, so they must be current.
    directory = LOCALE / language / "LC_MESSAGES"
    with (directory / "django.mo").open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)
    for entry in read_po(directory / "django.po"):
        if not all(entry["msgstr"]) or "fuzzy" in entry["flags"]:
            continue
        if entry["plural"]:
            assert catalog.ngettext(entry["msgid"], entry["plural"], 1) == entry["msgstr"][0]
        else:
            assert catalog.gettext(entry["msgid"]) == entry["msgstr"][0], entry["msgid"]


def test_the_error_pages_render_without_a_request_context():
    from django.template.loader import render_to_string

    for name in ("404.html", "403.html", "403_csrf.html", "500.html"):
        assert "<h1>" in render_to_string(name)


def test_every_marked_string_of_the_code_is_in_the_english_catalog():
    """A string marked for translation but missing from the catalog shows in Chinese on an
    English page: every ``{% translate "…" %}`` of a template and ``_("…")`` or
    ``gettext_noop("…")`` of the code."""
    src = Path(__file__).resolve().parents[2]
    catalog = {e["msgid"] for e in read_po(LOCALE / "en" / "LC_MESSAGES" / "django.po")}
    marked = set()
    for path in src.rglob("*.html"):
        marked |= {(path, m) for m in re.findall(r'{%\s*translate\s+"([^"]+)"', path.read_text("utf-8"))}
    for path in src.rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        text = path.read_text("utf-8")
        marked |= {
            (path, m)
            for m in re.findall(
                r'\b(?:_l?|gettext_noop)\(\s*"((?:[^"\\\n]|\\.)+)"\s*[,)]', text
            )
        }
    missing = sorted(f"{p.relative_to(src)}: {m}" for p, m in marked if m not in catalog)
    assert not missing, "\n".join(missing)


def test_code_tables_read_in_english_with_the_chinese_term_beside(client, staff_zhang, alice_corp):
    from kechuang.registry.models import IPAsset

    IPAsset.objects.create(
        enterprise=alice_corp, ip_type="invention_patent", number="ZL1", title="t", status="valid"
    )
    client.force_login(staff_zhang)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("registry:enterprise_detail", args=[alice_corp.credit_code]))
    assert "Invention patent (发明专利)" in page.content.decode()
    listing = client.get(reverse("registry:enterprise_list")).content.decode()
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert "High-tech enterprise (高新技术企业)" in listing
