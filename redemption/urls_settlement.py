"""Settlement pages: operators' batches under /remboursements/lots/, providers' payouts."""

from django.urls import path

from . import views_settlement as views

app_name = "settlement"

urlpatterns = [
    # Provider: its payouts and their statements (operators reach any statement too).
    path("remboursements/", views.payout_list, name="payout_list"),
    path("remboursements/<int:pk>/releve.pdf", views.statement_pdf, name="statement_pdf"),
    path("remboursements/<int:pk>/releve.csv", views.statement_csv, name="statement_csv"),
    # Operator: batches, from computation to payment.
    path("remboursements/lots/", views.batch_list, name="batch_list"),
    path("remboursements/lots/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("remboursements/lots/<int:pk>/calcul/", views.batch_progress, name="batch_progress"),
    path("remboursements/lots/<int:pk>/approuver/", views.batch_approve, name="batch_approve"),
    path("remboursements/lots/<int:pk>/exporter/", views.batch_export, name="batch_export"),
    path("remboursements/lots/<int:pk>/sepa.xml", views.batch_sepa, name="batch_sepa"),
    path("remboursements/lots/<int:pk>/payer/", views.batch_mark_paid, name="batch_mark_paid"),
    path("remboursements/virements/<int:pk>/rejet/", views.payout_reject, name="payout_reject"),
]
