from django.urls import path

from . import views

urlpatterns = [
    path("mon-compte/", views.account, name="my_account"),
    path(
        "mon-compte/double-authentification/",
        views.two_factor_setup,
        name="two_factor_setup",
    ),
    path(
        "mon-compte/double-authentification/desactiver/",
        views.two_factor_disable,
        name="two_factor_disable",
    ),
    path(
        "mon-compte/double-authentification/codes-de-secours/",
        views.backup_codes_renew,
        name="backup_codes_renew",
    ),
    path("connexion/verification/", views.two_factor_verify, name="two_factor_verify"),
    path("connexions-bloquees/", views.login_lockouts, name="login_lockouts"),
    path(
        "connexions-bloquees/<int:pk>/lever/",
        views.login_lockout_lift,
        name="login_lockout_lift",
    ),
]
