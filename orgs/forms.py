"""Forms of the orgs app: they parse input; services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from .models import MemberRole, OrgRole


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("Adresse e-mail"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        "invalid_login": _(
            "Adresse e-mail ou mot de passe incorrect. Vérifiez votre saisie "
            "(les majuscules comptent pour le mot de passe)."
        ),
        "inactive": _("Ce compte est désactivé."),
    }

    def clean_username(self) -> str:
        # Addresses are stored in lower case (UserManager.create_user, invitations).
        return self.cleaned_data["username"].lower()


class OrganisationForm(forms.Form):
    name = forms.CharField(label=_("Nom de l'organisation"), max_length=200)
    roles = forms.MultipleChoiceField(
        label=_("Rôles"), choices=OrgRole.choices, widget=forms.CheckboxSelectMultiple
    )
    siret = forms.CharField(
        label=_("SIRET"), max_length=20, help_text=_("14 chiffres, espaces acceptés.")
    )
    address = forms.CharField(label=_("Adresse"), max_length=250)
    postcode = forms.CharField(label=_("Code postal"), max_length=8)
    city = forms.CharField(label=_("Commune"), max_length=120)
    departement = forms.CharField(label=_("Département"), max_length=3)
    admin_email = forms.EmailField(
        label=_("E-mail du premier administrateur"),
        help_text=_("Cette personne recevra une invitation par e-mail."),
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Adresse e-mail"))
    role = forms.ChoiceField(label=_("Rôle"), choices=MemberRole.choices, initial=MemberRole.AGENT)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Rôle"), choices=MemberRole.choices)


class InvitationAcceptForm(forms.Form):
    full_name = forms.CharField(label=_("Votre nom et prénom"), max_length=150)
    password = forms.CharField(
        label=_("Choisissez un mot de passe"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Au moins 8 caractères, pas uniquement des chiffres."),
    )
    password_confirm = forms.CharField(
        label=_("Confirmez le mot de passe"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_confirm"):
            self.add_error("password_confirm", _("Les deux mots de passe ne correspondent pas."))
        return data


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Nom du jeton"),
        max_length=100,
        help_text=_("Par exemple « Douchette accueil » ou « Logiciel de caisse »."),
    )
    membership = forms.TypedChoiceField(label=_("Agit au nom de"), coerce=int)

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["membership"].choices = [
            (m.pk, f"{m.user.get_full_name()} ({m.get_role_display()})") for m in members
        ]


class AuditFilterForm(forms.Form):
    action = forms.CharField(label=_("Action"), required=False)
    actor = forms.CharField(label=_("Personne (e-mail)"), required=False)
    organisation = forms.TypedChoiceField(
        label=_("Organisation"), required=False, coerce=int, empty_value=None
    )
    date_from = forms.DateField(
        label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, organisations=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organisations is None:
            del self.fields["organisation"]
        else:
            self.fields["organisation"].choices = [("", _("Toutes"))] + [
                (o.pk, o.name) for o in organisations
            ]


class LoggedPasswordResetForm(PasswordResetForm):
    """Django's reset form, sending through the e-mail layout and the notification log."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        from django.conf import settings
        from django.urls import reverse

        from .notifications import email_now

        path = reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
        # Not tied to one organisation: logged for operators only, with the link masked.
        email_now(
            to=[to_email],
            template="password_reset",
            context={"url": settings.SITE_URL + path},
            organisation=None,
            secrets=("url",),
        )


class NotificationFilterForm(forms.Form):
    template = forms.ChoiceField(label=_("Type de message"), required=False)
    recipient = forms.CharField(label=_("Destinataire"), required=False)
    status = forms.ChoiceField(label=_("État"), required=False)
    organisation = forms.TypedChoiceField(
        label=_("Organisation"), required=False, coerce=int, empty_value=None
    )
    date_from = forms.DateField(
        label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, organisations=None, **kwargs):
        from .models import NotificationStatus
        from .notifications import EMAIL_KINDS

        super().__init__(*args, **kwargs)
        kinds = sorted(EMAIL_KINDS.items(), key=lambda kind: str(kind[1]))
        self.fields["template"].choices = [("", _("Tous")), *kinds]
        self.fields["status"].choices = [("", _("Tous")), *NotificationStatus.choices]
        if organisations is None:
            del self.fields["organisation"]
        else:
            self.fields["organisation"].choices = [("", _("Toutes"))] + [
                (o.pk, o.name) for o in organisations
            ]


class AuditedSetPasswordForm(SetPasswordForm):
    """Password reset that goes through the service, so the change is audited."""

    ip: str | None = None

    def save(self, commit: bool = True):
        from .services import user_set_password

        return user_set_password(
            user=self.user, password=self.cleaned_data["new_password1"], ip=self.ip, reason="reset"
        )
