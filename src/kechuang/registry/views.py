"""Registry pages. Thin: access from ``access``, reads from ``selectors``, writes
through ``services``; each view is the glue between one form and one call."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from kechuang.accounts import roles
from kechuang.errors import KechuangError
from kechuang.registry import access, exports, imports, selectors, services
from kechuang.registry.forms import (
    ENTERPRISE_USER_FIELDS,
    FISCAL_YEAR_FIELDS,
    STAFF_FIELDS,
    EnterpriseForm,
    EnterpriseSearchForm,
    FiscalYearForm,
    ImportForm,
)

PAGE_SIZE = 25
HISTORY_LIMIT = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The storage name of the last rejected import's error workbook, for its download link.
SESSION_IMPORT_ERRORS = "registry_import_errors"


@login_required
def enterprise_list(request: HttpRequest) -> HttpResponse:
    if roles.has_ability(request.user, "own_enterprise") and not access.may_browse(request.user):
        # An enterprise user's registry is their own enterprise.
        return redirect("registry:enterprise_detail", request.user.enterprise.credit_code)
    access.require(request.user, "browse_registry")
    form = EnterpriseSearchForm(request.GET or None)
    rows = access.restrict(request.user, selectors.enterprise_list(**form.filters()))
    if form.is_bound and not form.is_valid():
        # A filter value that does not exist (a stale link) lists nothing and says why,
        # rather than every enterprise as if no filter had been asked for.
        rows = rows.none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "registry/enterprise_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "may_export": roles.has_ability(request.user, "export_registry"),
        },
    )


@login_required
def enterprise_detail(request: HttpRequest, credit_code: str) -> HttpResponse:
    enterprise = access.enterprise_for_view(request.user, credit_code)
    return render(
        request,
        "registry/enterprise_detail.html",
        {
            "enterprise": enterprise,
            "fiscal_years": enterprise.fiscal_years.order_by("-year"),
            "ip_assets": enterprise.ip_assets.order_by("-grant_date", "number"),
            "certifications": enterprise.certifications.order_by("-valid_from"),
            "awards": enterprise.awards.order_by("-awarded_on"),
            "rd_institutions": enterprise.rd_institutions.order_by("-recognized_on"),
            "standards": enterprise.standards.order_by("-published_on"),
            "incidents": enterprise.incidents.order_by("-occurred_on"),
            "list_entries": enterprise.list_entries.order_by("-listed_on"),
            "history": selectors.enterprise_history(enterprise=enterprise)[:HISTORY_LIMIT],
            "may_edit": access.can_edit_enterprise(request.user, enterprise),
            "today": timezone.localdate(),
        },
    )


def _add_model_errors(form: Any, exc: ValidationError) -> None:
    # The model's own validation (full_clean in the service), shown on the form's fields.
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {"__all__": exc.error_list}
    for field, errors in by_field.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def _editable_fields(user: Any) -> tuple[str, ...]:
    if roles.has_ability(user, "edit_any_enterprise"):
        return STAFF_FIELDS
    return ENTERPRISE_USER_FIELDS


@login_required
@require_http_methods(["GET", "POST"])
def enterprise_edit(request: HttpRequest, credit_code: str) -> HttpResponse:
    enterprise = access.enterprise_for_edit(request.user, credit_code)
    field_names = _editable_fields(request.user)
    current = {name: getattr(enterprise, name) for name in field_names}
    form = EnterpriseForm(request.POST or None, initial=current, field_names=field_names)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if v != current[k]}
        try:
            services.enterprise_update(actor=request.user, enterprise=enterprise, **changes)
        except KechuangError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except ValidationError as exc:
            _add_model_errors(form, exc)
        else:
            messages.success(request, _("已保存。"))
            return redirect("registry:enterprise_detail", enterprise.credit_code)
    return render(
        request, "registry/enterprise_form.html", {"enterprise": enterprise, "form": form}
    )


@login_required
@require_http_methods(["GET", "POST"])
def fiscal_year_edit(
    request: HttpRequest, credit_code: str, year: int | None = None
) -> HttpResponse:
    enterprise = access.enterprise_for_edit(request.user, credit_code)
    initial: dict[str, Any] = {}
    if year is not None:
        fiscal_year = enterprise.fiscal_years.filter(year=year).first()
        if fiscal_year is None:
            raise Http404()
        initial = {"year": year, **{f: getattr(fiscal_year, f) for f in FISCAL_YEAR_FIELDS}}
    form = FiscalYearForm(request.POST or None, initial=initial)
    if year is not None:
        form.fields["year"].disabled = True
    if request.method == "POST" and form.is_valid():
        figures = {f: form.cleaned_data.get(f) for f in FISCAL_YEAR_FIELDS}
        try:
            services.fiscal_year_set(
                actor=request.user,
                enterprise=enterprise,
                year=form.cleaned_data["year"],
                new=year is None,
                **figures,
            )
        except KechuangError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("已保存。"))
            return redirect("registry:enterprise_detail", enterprise.credit_code)
    return render(
        request,
        "registry/fiscal_year_form.html",
        {"enterprise": enterprise, "form": form, "year": year},
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "import_registry")
    form = ImportForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        progress = ImportProgress.for_request(request, request.POST.get("progress_id", ""))
        try:
            result = services.registry_import(
                file=upload,
                filename=upload.name,
                actor=request.user,
                progress=progress.advance if progress else None,
            )
        finally:
            if progress:
                progress.finish()
        _forget_error_report(request)
        if not result.ok:
            _keep_error_report(request, imports.error_report_workbook(result.errors))
    template = "registry/import.html"
    if request.headers.get("X-Requested-With") == "fetch":
        # The page's script swaps in only the result block.
        template = "registry/import_result.html"
    return render(request, template, {"form": form, "result": result})


class ImportProgress:
    """Rows checked so far by a running import, for the page to poll.

    The import runs in the upload request itself; a second request (the page's
    poll) reads the count from a small file, which works whichever process of
    the app server answers the poll. The id is the page's random one, scoped
    to the user, so nobody reads another import's progress."""

    ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

    def __init__(self, user_pk: int, progress_id: str) -> None:
        self.path = Path(settings.MEDIA_ROOT) / "import-progress" / f"{user_pk}-{progress_id}.json"
        self.rows = 0

    @classmethod
    def for_request(cls, request: HttpRequest, progress_id: str) -> ImportProgress | None:
        if not cls.ID.match(progress_id or ""):
            return None
        return cls(request.user.pk, progress_id)

    def advance(self, rows: int) -> None:
        self.rows += rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a poll never reads half a file.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": self.rows}), encoding="utf-8")
        os.replace(tmp, self.path)

    def read(self) -> dict[str, int] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


@login_required
def import_progress(request: HttpRequest, progress_id: str) -> HttpResponse:
    access.require(request.user, "import_registry")
    progress = ImportProgress.for_request(request, progress_id)
    state = progress.read() if progress else None
    if state is None:
        raise Http404()
    return JsonResponse(state)


@login_required
def import_errors_workbook(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "import_registry")
    name = request.session.get(SESSION_IMPORT_ERRORS)
    if not name or not default_storage.exists(name):
        raise Http404()
    return FileResponse(
        default_storage.open(name, "rb"),
        as_attachment=True,
        filename="import-errors.xlsx",
        content_type=XLSX,
    )


def _keep_error_report(request: HttpRequest, data: bytes) -> None:
    # The report can have a row per bad cell of a 100,000-row file: too big for
    # the session, so it goes to a file (under MEDIA_ROOT, which is never served)
    # with a random name only this session knows.
    name = default_storage.save(
        f"import-reports/{secrets.token_urlsafe(16)}.xlsx", ContentFile(data)
    )
    request.session[SESSION_IMPORT_ERRORS] = name


def _forget_error_report(request: HttpRequest) -> None:
    name = request.session.pop(SESSION_IMPORT_ERRORS, None)
    if name and default_storage.exists(name):
        default_storage.delete(name)


@login_required
def export(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "export_registry")
    form = EnterpriseSearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        # An unknown street or certification would otherwise export the whole registry:
        # more than was asked for, to whoever asked.
        fields = ", ".join(sorted(form.errors))
        return HttpResponse(
            f"导出条件无效：{fields} / invalid export filter: {fields}",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters()
    out = io.BytesIO()
    exports.registry_export(out=out, filters=filters)
    out.seek(0)
    stamp = timezone.localdate().isoformat()
    return FileResponse(
        out, as_attachment=True, filename=f"kechuang-registry-{stamp}.xlsx", content_type=XLSX
    )
