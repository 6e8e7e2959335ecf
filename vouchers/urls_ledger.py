"""Funders' accounts: the account and its credit notes, and the operator's balances."""

from django.urls import path

from .views import ledger as views

urlpatterns = [
    path("compte/", views.account, name="account"),
    path("compte/soldes/", views.balances, name="balances"),
    path("compte/avoirs/<int:pk>.pdf", views.credit_note_pdf, name="credit_note_pdf"),
]
