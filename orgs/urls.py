from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("connexion/", views.LoginView.as_view(), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("mot-de-passe/oubli/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "mot-de-passe/oubli/envoye/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "mot-de-passe/nouveau/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "mot-de-passe/nouveau/termine/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("langue/", views.language_set, name="set_language"),
    path("organisation/changer/", views.switch_membership, name="switch_membership"),
    path("organisations/", views.organisation_list, name="organisation_list"),
    path("organisations/nouvelle/", views.organisation_create, name="organisation_create"),
    path("organisations/<int:pk>/", views.organisation_detail, name="organisation_detail"),
    path("membres/", views.member_list, name="member_list"),
    path("membres/inviter/", views.member_invite, name="member_invite"),
    path("membres/<int:pk>/", views.member_edit, name="member_edit"),
    path("membres/<int:pk>/retirer/", views.member_remove, name="member_remove"),
    path(
        "membres/invitations/<int:pk>/annuler/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitation/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("jetons/", views.token_list, name="token_list"),
    path("jetons/<int:pk>/revoquer/", views.token_revoke, name="token_revoke"),
    path("journal/", views.audit_list, name="audit_list"),
    path("messages-envoyes/", views.notification_list, name="notification_list"),
    path("messages-envoyes/<int:pk>/", views.notification_detail, name="notification_detail"),
    path("", include("orgs.urls_accreditation")),
]
