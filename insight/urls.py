"""Dashboards: one per organisation role."""

from django.urls import path

from . import views

app_name = "insight"

urlpatterns = [
    path("tableau-de-bord/", views.dashboard, name="dashboard"),
    path("tableau-de-bord/commanditaire/", views.funder_dashboard, name="funder"),
    path("tableau-de-bord/structure-relais/", views.distributor_dashboard, name="distributor"),
    path("tableau-de-bord/lieu-qualifie/", views.provider_dashboard, name="provider"),
    path("tableau-de-bord/operateur/", views.operator_dashboard, name="operator"),
]
