"""Chinese unless the user picks English.

Django's LocaleMiddleware would follow the browser's Accept-Language, and many
office machines in the district run an English-language browser. The
commission wants the Chinese UI by default and English only when someone asks
for it with the language switch (Django's language cookie), so this drops the
header before LocaleMiddleware reads it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ChineseByDefaultMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
