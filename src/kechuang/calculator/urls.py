"""Calculator pages under /calculator/. Fixed paths come before ``<credit_code>/``.

The 免申即享 run and reform pages are another part of the app: their patterns live in
``urls_runs.py`` (owned with ``views_runs.py``) and are listed first when present.
"""

from importlib.util import find_spec

from django.urls import path

from kechuang.calculator import views

app_name = "calculator"

run_patterns = []
if find_spec("kechuang.calculator.urls_runs") is not None:
    from kechuang.calculator.urls_runs import urlpatterns as run_patterns

urlpatterns = [
    *run_patterns,
    path("", views.index, name="index"),
    path("try/", views.public_index, name="public_index"),
    path("try/<str:policy_id>/", views.public_try, name="public_try"),
    path("<str:credit_code>/", views.selfcheck, name="selfcheck"),
]
