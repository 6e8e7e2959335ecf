from django.urls import path

from . import api, api_settlement

urlpatterns = [
    path("cheques/<str:code>/", api.ChequeCheck.as_view(), name="api_cheque"),
    path("redemptions/", api.RedemptionListCreate.as_view(), name="api_redemptions"),
    path(
        "redemptions/<int:pk>/cancel/", api.RedemptionCancel.as_view(), name="api_redemption_cancel"
    ),
    path("payouts/", api_settlement.PayoutList.as_view(), name="api_payouts"),
]
