"""The provider's counter and redemptions; the public page a cheque's QR code opens."""

from django.urls import path

from . import views

app_name = "redemption"

urlpatterns = [
    path("encaisser/", views.counter, name="counter"),
    path("alertes/", views.fraud_alerts, name="fraud_alerts"),
    path("encaisser/verifier/", views.counter_check, name="counter_check"),
    path("encaissements/", views.redemption_list, name="redemption_list"),
    path("encaissements/<int:pk>/", views.redemption_detail, name="redemption_detail"),
    path(
        "encaissements/<int:pk>/annuler/",
        views.redemption_cancel_view,
        name="redemption_cancel",
    ),
    path("c/<str:code>/", views.public_cheque, name="public_cheque"),
    # The QR code holds https://<host>/c/<code>: answered as is, without a redirect.
    path("c/<str:code>", views.public_cheque, name="public_cheque_qr"),
]
