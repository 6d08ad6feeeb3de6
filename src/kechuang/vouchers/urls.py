from django.urls import path

from kechuang.vouchers import views

app_name = "vouchers"

urlpatterns = [
    path("", views.home, name="home"),
    path("programs/new/", views.program_create, name="program_create"),
    path("programs/<int:pk>/", views.program_detail, name="program"),
    path("programs/<int:pk>/chart.png", views.program_chart, name="program_chart"),
    path("programs/<int:pk>/statistics.xlsx", views.program_export, name="program_export"),
    path("programs/<int:pk>/ledger/", views.program_ledger, name="ledger"),
    path("programs/<int:pk>/expire/", views.program_expire, name="program_expire"),
    path("programs/<int:pk>/settle/", views.settlement_create, name="settlement_create"),
    path("settlements/<int:pk>/payment.xlsx", views.settlement_file, name="settlement_file"),
    path("institutions/apply/", views.institution_apply, name="institution_apply"),
    path("institutions/<int:pk>/decide/", views.institution_decide, name="institution_decide"),
    path("offerings/new/", views.offering_create, name="offering_create"),
    path("quota/apply/", views.quota_apply, name="quota_apply"),
    path("quota/<int:pk>/decide/", views.quota_decide, name="quota_decide"),
    path("orders/new/", views.order_create, name="order_create"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/apply/", views.order_apply, name="order_apply"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<int:pk>/deliver/", views.order_deliver, name="order_deliver"),
    path("orders/<int:pk>/delivery-file", views.order_delivery_file, name="order_delivery_file"),
    path("orders/<int:pk>/claim/", views.order_claim, name="order_claim"),
    path("claims/<int:pk>/decide/", views.claim_decide, name="claim_decide"),
]
