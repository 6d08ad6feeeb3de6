"""Fixtures of the calculator's run and reform tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def immediate_tasks(settings):
    """Tasks run inside ``enqueue`` (the worker, inline), as in the browser test."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
