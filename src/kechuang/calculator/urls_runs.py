"""免申即享 runs, offers and reforms (included first by ``calculator/urls.py``)."""

from django.urls import path

from kechuang.calculator import views_runs

urlpatterns = [
    path("runs/", views_runs.runs_list, name="runs_list"),
    path("runs/<int:run_id>/", views_runs.run_detail, name="run_detail"),
    path("runs/<int:run_id>/status/", views_runs.run_status, name="run_status"),
    path("runs/<int:run_id>/export.xlsx", views_runs.run_export, name="run_export"),
    path("runs/<int:run_id>/confirm/", views_runs.run_confirm, name="run_confirm"),
    path("runs/<int:run_id>/<str:how>/", views_runs.run_requeue, name="run_requeue"),
    path("runs/<int:run_id>/results/<int:result_id>/", views_runs.run_result, name="run_result"),
    path(
        "runs/<int:run_id>/results/<int:result_id>/exclude/",
        views_runs.run_exclude,
        name="run_exclude",
    ),
    path("offers/", views_runs.offers, name="mianshen_offers"),
    path("offers/<int:offer_id>/accept/", views_runs.offer_accept, name="offer_accept"),
    path("reforms/", views_runs.reforms_list, name="reforms_list"),
    path("reforms/<int:reform_id>/", views_runs.reform_detail, name="reform_detail"),
    path("reforms/<int:reform_id>/chart.png", views_runs.reform_chart, name="reform_chart"),
    path("reforms/<int:reform_id>/publish/", views_runs.reform_publish, name="reform_publish"),
    path(
        "publications/<int:publication_id>/withdraw/",
        views_runs.publication_withdraw,
        name="publication_withdraw",
    ),
]
