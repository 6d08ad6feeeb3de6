"""WSGI entry point (``kechuang.wsgi:application``) for any WSGI server."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")

application = get_wsgi_application()
