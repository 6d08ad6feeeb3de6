"""The REST API root: one NinjaAPI, mounted at ``/api/``.

- Every endpoint requires ``Authorization: Bearer <token>`` unless it says
  otherwise. Tokens are issued per user (``kechuang token create USER``) and
  stored only as a SHA-256 hash (see ``kechuang.accounts.tokens``).
- The spec is at ``/api/openapi.json`` and the docs at ``/api/docs`` (Swagger
  served from django-ninja's bundled static files: browsers here have no internet).
- Every error has one shape: ``{"message": str, "extra": {"field": str | None, …}}``.
- Access rules are the pages' own: each router calls its app's ``access.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.security import HttpBearer

from kechuang.accounts import roles, tokens
from kechuang.errors import KechuangError
from kechuang.rules.facts import MAGNITUDE_DIGITS
from kechuang.rules.numbers import dumps_exact


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` → the token's user, or 401."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = tokens.user_for_token(token)
        if user is None:
            return None
        # Views and access helpers read request.user, as on the pages.
        request.user = user
        return user


def _number(text: str) -> Decimal:
    # 1e999999999 is valid JSON, but turning it into an integer takes hours.
    value = Decimal(text)
    if value and abs(value.adjusted()) > MAGNITUDE_DIGITS:
        raise HttpError(400, f"数字超出范围 / number out of range: {text[:40]}")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAGNITUDE_DIGITS + 1:
        raise HttpError(400, f"数字超出范围 / number out of range: {text[:40]}…")
    return int(text)


def _constant(name: str) -> Any:
    raise HttpError(400, f"不是数字 / not a number: {name}")


def _check_text(value: Any) -> None:
    """Refuse text no database can store (a lone surrogate such as "\\ud800")."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise HttpError(400, "文本含无效字符 / text with an invalid character") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class ExactJSONParser(Parser):
    """JSON numbers read through their decimal text (RULES.md 0.5): a 16-digit amount
    must reach the rules engine as sent, not as the nearest binary float. Numbers beyond
    1e±30, NaN and text no database can store are refused (400), before any work."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(
                request.body, parse_float=_number, parse_int=_integer, parse_constant=_constant
            )
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "请求体不是有效的 JSON / the body is not valid JSON") from None
        _check_text(data)
        return data


class ExactJSONRenderer(JSONRenderer):
    """An amount beyond a double's digits (``ExactFloat``) goes out as its exact decimal."""

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        return dumps_exact(data, cls=self.encoder_class, **self.json_dumps_params)


api = NinjaAPI(
    title="kechuang API",
    version="1",
    description="科创 kechuang: enterprise registry and innovation services. "
    "Authenticate with `Authorization: Bearer <token>` (`kechuang token create USER`).",
    urls_namespace="api",
    auth=BearerToken(),
    parser=ExactJSONParser(),
    renderer=ExactJSONRenderer(),
)


class ErrorOut(Schema):
    message: str
    extra: dict[str, Any] = {}


def error_response(
    request: HttpRequest, status: int, message: str, field: str | None = None, **extra: Any
) -> HttpResponse:
    return api.create_response(
        request, {"message": message, "extra": {"field": field, **extra}}, status=status
    )


def _loc_to_field(loc: Any) -> str | None:
    # ninja locations look like ("body", "payload", "name") or ("query", "page").
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form", "file", "payload")]
    return ".".join(parts) or None


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _loc_to_field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors
    ]
    first = errors[0] if errors else {"field": None, "message": "Invalid input"}
    return error_response(request, 422, first["message"], first["field"], errors=errors)


@api.exception_handler(DjangoValidationError)
def _django_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    # A service refused the change: say which field and why, as a form would.
    if hasattr(exc, "error_dict"):
        errors = [
            {"field": None if f == "__all__" else f, "message": str(m)}
            for f, msgs in exc.message_dict.items()
            for m in msgs
        ]
    else:
        errors = [{"field": None, "message": str(m)} for m in exc.messages]
    first = errors[0] if errors else {"field": None, "message": "Invalid input"}
    return error_response(request, 400, first["message"], first["field"], errors=errors)


@api.exception_handler(KechuangError)
def _refused(request: HttpRequest, exc: KechuangError) -> HttpResponse:
    return error_response(request, 400, exc.message, exc.field)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    # Never echo the exception text: "not yours" and "does not exist" must read the same.
    return error_response(request, 404, "Not found")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(request, 401, "Authentication required")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(request, 403, str(exc) or "Forbidden")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(request, exc.status_code, str(exc))


@api.exception_handler(OverflowError)
def _out_of_range(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    # A number (an id in the path, a year, a count) beyond what the database stores.
    return error_response(request, 400, "数字超出范围 / number out of range")


class MeOut(Schema):
    username: str
    role: str
    enterprise: str | None = None


@api.get("/me", response=MeOut, tags=["accounts"], summary="Who this token belongs to")
def me(request: HttpRequest) -> dict[str, Any]:
    user = request.auth
    enterprise = getattr(user, "enterprise", None)
    return {
        "username": user.get_username(),
        "role": roles.role_of(user),
        "enterprise": enterprise.credit_code if enterprise is not None else None,
    }


api.add_router("/enterprises", "kechuang.registry.api.router")
api.add_router("/vouchers", "kechuang.vouchers.api.router")
api.add_router("/calculator", "kechuang.calculator.api.router")
api.add_router("/mianshen", "kechuang.calculator.api_runs.router")
