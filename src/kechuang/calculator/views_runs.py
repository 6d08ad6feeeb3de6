"""免申即享 run, offer and reform pages. Thin: access from ``access_runs``, reads from
``selectors_runs``, writes through ``services_runs`` / ``reforms`` / ``services_law``."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from kechuang.calculator import access_runs, law, runs, selectors_runs, services_runs
from kechuang.calculator.models_runs import MianshenResult, MianshenRun
from kechuang.calculator.selectors import application_inputs
from kechuang.errors import KechuangError
from kechuang.registry import codes
from kechuang.registry.selectors import enterprise_streets
from kechuang.rules import get_policy, policy_ids

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZE = 50


def _policy_choices() -> list[tuple[str, str]]:
    """The policies a run can decide from the registry (not those needing an application)."""
    return [
        (pid, f"{get_policy(pid).title.zh} ({pid})")
        for pid in policy_ids()
        if not application_inputs(get_policy(pid))
    ]


class RunStartForm(forms.Form):
    policies = forms.MultipleChoiceField(
        label=gettext_lazy("政策"), widget=forms.CheckboxSelectMultiple, choices=()
    )
    as_of = forms.DateField(label=gettext_lazy("基准日"), widget=forms.DateInput(attrs={"type": "date"}))
    street = forms.ChoiceField(label=gettext_lazy("街道/镇"), required=False, choices=())
    industry_code = forms.CharField(label=gettext_lazy("行业代码（前缀）"), required=False, max_length=4)
    certification = forms.ChoiceField(
        label=gettext_lazy("资质"),
        required=False,
        choices=[("", "—")]
        + [c for c in codes.CERTIFICATION_CHOICES if c[0] in ("hte", "tsme", "little_giant")],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["policies"].choices = _policy_choices()
        self.fields["street"].choices = [("", _("全部"))] + [(s, s) for s in enterprise_streets()]
        if not self.is_bound:
            self.initial.setdefault("as_of", dt.date.today())
            self.initial.setdefault("policies", runs.mianshen_policy_ids() or policy_ids())

    def scope(self) -> dict[str, str]:
        return {k: self.cleaned_data.get(k) or "" for k in services_runs.SCOPE_KEYS}


@login_required
@require_http_methods(["GET", "POST"])
def runs_list(request: HttpRequest) -> HttpResponse:
    access_runs.require_view(request.user)
    services_runs.mianshen_runs_mark_interrupted()
    form = RunStartForm(request.POST or None)
    if request.method == "POST":
        access_runs.require_manage(request.user)
        if form.is_valid():
            try:
                run = services_runs.mianshen_run_start(
                    policies=form.cleaned_data["policies"],
                    as_of=form.cleaned_data["as_of"],
                    scope=form.scope(),
                    actor=request.user,
                )
            except KechuangError as e:
                form.add_error(None, e.message)
            else:
                return redirect("calculator:run_detail", run_id=run.pk)
    page = Paginator(selectors_runs.run_list(), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "calculator/runs/list.html",
        {"form": form, "page": page, "may_manage": access_runs.may_manage_runs(request.user)},
    )


def _run(request: HttpRequest, run_id: int) -> MianshenRun:
    access_runs.require_view(request.user)
    return get_object_or_404(MianshenRun.objects.select_related("reform", "created_by"), pk=run_id)


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    services_runs.mianshen_runs_mark_interrupted()
    run = _run(request, run_id)
    policy = request.GET.get("policy", "")
    verdict = request.GET.get("verdict", "")
    search = request.GET.get("q", "").strip()
    only_paid = request.GET.get("paid") == "1"
    results = selectors_runs.run_results(
        run, policy=policy, verdict=verdict, search=search, only_paid=only_paid
    )
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    previous = selectors_runs.run_previous(run)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "calculator/runs/detail.html",
        {
            "run": run,
            "progress": selectors_runs.run_progress(run),
            "summary": selectors_runs.run_summary(run),
            "previous": previous,
            "changes": selectors_runs.run_changes(run, previous) if run.status in ("done", "confirmed") else None,
            "page": page,
            "filters": {"policy": policy, "verdict": verdict, "q": search, "paid": only_paid},
            "query": query.urlencode(),
            "verdicts": selectors_runs.VERDICTS,
            "may_manage": access_runs.may_manage_runs(request.user),
            "reviewable": run.status == MianshenRun.Status.DONE and not run.reform_id,
        },
    )


@login_required
def run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """The progress fragment the run page polls (every second until it finishes)."""
    services_runs.mianshen_runs_mark_interrupted()
    run = _run(request, run_id)
    return render(
        request, "calculator/runs/_status.html", {"run": run, "progress": selectors_runs.run_progress(run)}
    )


@login_required
def run_result(request: HttpRequest, run_id: int, result_id: int) -> HttpResponse:
    """One stored result with its outputs, and the full explanation as of the run date."""
    run = _run(request, run_id)
    result = get_object_or_404(MianshenResult.objects.select_related("enterprise"), pk=result_id, run=run)
    from kechuang.calculator import reforms

    facts = runs.stored_facts_row(run.pk, result.credit_code)
    try:
        decision = reforms.explain_result(run, result)
        outputs, refused = selectors_runs.result_outputs(run, result, decision), ""
    except KechuangError as e:
        # The stored decision no longer follows from the kept inputs: say so, and show
        # no explanation that would not be this decision's.
        decision, outputs, refused = None, None, e.message
    lang = "en" if (get_language() or "").startswith("en") else "zh"
    return render(
        request,
        "calculator/runs/result.html",
        {"run": run, "result": result, "decision": decision, "refused": refused,
         "outputs": selectors_runs.output_rows(outputs) if outputs else None,
         "explanation": decision.explain(lang) if decision is not None else "",
         # What the run read (its stored row), the known values only.
         "facts": selectors_runs.facts_rows(facts, run.as_of) if facts else None},
        status=409 if refused else 200,
    )


@login_required
@require_POST
def run_exclude(request: HttpRequest, run_id: int, result_id: int) -> HttpResponse:
    access_runs.require_manage(request.user)
    run = _run(request, run_id)
    result = get_object_or_404(MianshenResult, pk=result_id, run=run)
    try:
        services_runs.mianshen_result_exclude(
            result=result, reason=request.POST.get("reason", ""), actor=request.user
        )
    except KechuangError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已排除 %(code)s") % {"code": result.credit_code})
    back = request.POST.get("next", "")
    # Only back to a page of this site: never an open redirect to another host.
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = f"/calculator/runs/{run.pk}/"
    return HttpResponseRedirect(back)


@login_required
@require_POST
def run_confirm(request: HttpRequest, run_id: int) -> HttpResponse:
    access_runs.require_manage(request.user)
    run = _run(request, run_id)
    try:
        offers = services_runs.mianshen_run_confirm(run=run, actor=request.user)
    except KechuangError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已确认：向 %(n)d 项兑现发出通知") % {"n": len(offers)})
    return redirect("calculator:run_detail", run_id=run.pk)


@login_required
@require_POST
def run_requeue(request: HttpRequest, run_id: int, how: str) -> HttpResponse:
    access_runs.require_manage(request.user)
    run = _run(request, run_id)
    if how not in ("resume", "restart"):
        raise Http404()
    try:
        if how == "resume":
            services_runs.mianshen_run_resume(run=run, actor=request.user)
        else:
            services_runs.mianshen_run_restart(run=run, actor=request.user)
    except KechuangError as e:
        messages.error(request, e.message)
    return redirect("calculator:run_detail", run_id=run.pk)


@login_required
def run_export(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    response = HttpResponse(selectors_runs.run_export_xlsx(run), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="mianshen-run-{run.pk}.xlsx"'
    return response


# --------------------------------------------------------------------------- enterprise side


@login_required
def offers(request: HttpRequest) -> HttpResponse:
    """An enterprise's 免申即享 offers: confirm wish and bank account in one step."""
    if not access_runs.roles.has_ability(request.user, "own_enterprise"):
        raise Http404()
    ent_id = request.user.enterprise_id
    return render(
        request,
        "calculator/runs/offers.html",
        {
            "offers": selectors_runs.offers_for_enterprise(ent_id),
            "needs_data": selectors_runs.needs_data_for_enterprise(ent_id),
            "notifications": selectors_runs.notifications_for(request.user)[:20],
        },
    )


@login_required
@require_POST
def offer_accept(request: HttpRequest, offer_id: int) -> HttpResponse:
    offer = access_runs.offer_for_enterprise_user(request.user, offer_id)
    try:
        services_runs.mianshen_offer_accept(
            offer=offer,
            bank_name=request.POST.get("bank_name", ""),
            bank_account=request.POST.get("bank_account", ""),
            actor=request.user,
        )
    except KechuangError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已确认受领，等待拨付"))
    return redirect("calculator:mianshen_offers")


# --------------------------------------------------------------------------- reforms


@login_required
@require_http_methods(["GET", "POST"])
def reforms_list(request: HttpRequest) -> HttpResponse:
    """Reforms, and a new one: pick a policy, change its parameters, run it."""
    from kechuang.calculator import reforms

    access_runs.require_view(request.user)
    policy_id = request.POST.get("policy") or request.GET.get("policy") or ""
    as_of_text = request.POST.get("as_of") or request.GET.get("as_of") or dt.date.today().isoformat()
    error = None
    try:
        as_of = dt.date.fromisoformat(as_of_text)
    except ValueError:
        as_of, error = dt.date.today(), _("基准日格式应为 YYYY-MM-DD")
    params = []
    if policy_id:
        if policy_id not in policy_ids():
            raise Http404()
        params = reforms.reform_parameters(policy_id, as_of)
    if request.method == "POST" and not error:
        access_runs.require_manage(request.user)
        overrides = {p["name"]: request.POST.get(f"param_{p['name']}", "") for p in params}
        try:
            reform = reforms.reform_create(
                policy_id=policy_id, name=request.POST.get("name", ""), overrides=overrides,
                note=request.POST.get("note", ""), actor=request.user, as_of=as_of,
            )
            reforms.reform_run(reform=reform, as_of=as_of, actor=request.user)
        except KechuangError as e:
            error = e.message
        else:
            return redirect("calculator:reform_detail", reform_id=reform.pk)
    for p in params:
        p["posted"] = request.POST.get(f"param_{p['name']}", p["value"]) if request.method == "POST" else p["value"]
    return render(
        request,
        "calculator/reforms/list.html",
        {
            "reforms": selectors_runs.reform_list()[:50],
            "policies": _policy_choices(),
            "policy_id": policy_id,
            "as_of": as_of,
            "params": params,
            "error": error,
            "may_manage": access_runs.may_manage_runs(request.user),
        },
    )


def _reform_run(request: HttpRequest, reform_id: int):
    from kechuang.calculator.models_runs import Reform

    access_runs.require_view(request.user)
    reform = get_object_or_404(Reform, pk=reform_id)
    run = reform.runs.select_related("baseline").order_by("-created_at", "-id").first()
    return reform, run


@login_required
@require_http_methods(["GET", "POST"])
def reform_detail(request: HttpRequest, reform_id: int) -> HttpResponse:
    from kechuang.calculator import reforms

    services_runs.mianshen_runs_mark_interrupted()
    reform, run = _reform_run(request, reform_id)
    if request.method == "POST":
        access_runs.require_manage(request.user)
        try:
            as_of = dt.date.fromisoformat(request.POST.get("as_of", ""))
            reforms.reform_run(reform=reform, as_of=as_of, actor=request.user)
        except ValueError:
            messages.error(request, _("基准日格式应为 YYYY-MM-DD"))
        except KechuangError as e:
            messages.error(request, e.message)
        return redirect("calculator:reform_detail", reform_id=reform.pk)
    comparison = reforms.reform_comparison(run) if run else None
    progress = None
    if run and not comparison:
        progress = [selectors_runs.run_progress(r) for r in (run.baseline, run) if r is not None]
    return render(
        request,
        "calculator/reforms/detail.html",
        {
            "reform": reform,
            "run": run,
            "comparison": comparison,
            "progress": progress,
            "policy": get_policy(reform.policy_id),
            "may_manage": access_runs.may_manage_runs(request.user),
            "may_publish": access_runs.may_publish_parameters(request.user),
            "publications": law.publications(policy_id=reform.policy_id),
            "publish_error": request.session.pop("publish_error", None),
        },
    )


@login_required
@require_POST
def reform_publish(request: HttpRequest, reform_id: int) -> HttpResponse:
    """Publish some of the reform's values as the law in force (admins only)."""
    from kechuang.calculator import services_law

    reform, _run = _reform_run(request, reform_id)
    access_runs.require_publish(request.user)
    try:
        published = services_law.parameter_publish(
            reform=reform,
            parameters=request.POST.getlist("parameters"),
            effective_from=_date_or_none(request.POST.get("effective_from"), "effective_from"),
            effective_until=_date_or_none(request.POST.get("effective_until"), "effective_until"),
            document_number=request.POST.get("document_number", ""),
            article=request.POST.get("article", ""),
            reason=request.POST.get("reason", ""),
            actor=request.user,
        )
    except KechuangError as e:
        request.session["publish_error"] = {"message": e.message, "field": e.field}
        messages.error(request, e.message)
    else:
        messages.success(
            request,
            _("已发布 %(names)s，自 %(day)s 起施行")
            % {"names": ", ".join(p.parameter for p in published), "day": published[0].effective_from},
        )
    return redirect("calculator:reform_detail", reform_id=reform.pk)


@login_required
@require_POST
def publication_withdraw(request: HttpRequest, publication_id: int) -> HttpResponse:
    """Withdraw a publication that has not taken effect (admins only)."""
    from kechuang.calculator import services_law
    from kechuang.calculator.models_law import ParameterPublication

    access_runs.require_publish(request.user)
    pub = get_object_or_404(ParameterPublication, pk=publication_id)
    try:
        services_law.parameter_publication_withdraw(
            publication=pub, reason=request.POST.get("reason", ""), actor=request.user
        )
    except KechuangError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已撤回"))
    if pub.reform_id:
        return redirect("calculator:reform_detail", reform_id=pub.reform_id)
    return redirect("calculator:reforms_list")


def _date_or_none(text: str | None, field: str) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise KechuangError(
            f"日期格式应为 YYYY-MM-DD / {field}: not a date (YYYY-MM-DD): {text!r}", field=field
        ) from None


@login_required
def reform_chart(request: HttpRequest, reform_id: int) -> HttpResponse:
    from kechuang.calculator import reforms

    reform, run = _reform_run(request, reform_id)
    comparison = reforms.reform_comparison(run) if run else None
    if comparison is None:
        raise Http404()
    # The title stays ASCII: the server's matplotlib may have no CJK font.
    png = reforms.reform_chart_png(comparison, f"{reform.policy_id}, reform #{reform.pk}")
    return HttpResponse(png, content_type="image/png")
