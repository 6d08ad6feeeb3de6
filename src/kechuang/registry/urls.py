from django.urls import path

from kechuang.registry import views

app_name = "registry"

urlpatterns = [
    path("", views.enterprise_list, name="enterprise_list"),
    path("export.xlsx", views.export, name="export"),
    path("import/", views.import_page, name="import"),
    path("import/errors.xlsx", views.import_errors_workbook, name="import_errors"),
    path("import/progress/<str:progress_id>/", views.import_progress, name="import_progress"),
    path("<str:credit_code>/", views.enterprise_detail, name="enterprise_detail"),
    path("<str:credit_code>/edit/", views.enterprise_edit, name="enterprise_edit"),
    path(
        "<str:credit_code>/years/<int:year>/edit/",
        views.fiscal_year_edit,
        name="fiscal_year_edit",
    ),
    path("<str:credit_code>/years/new/", views.fiscal_year_edit, name="fiscal_year_new"),
]
