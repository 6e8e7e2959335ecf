"""Forms of the accreditation pages: they parse input; the services decide.

Field names are the model's (and the services' error fields), so a service's refusal lands on
the right field.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import AccreditationStatus, DocumentKind
from .services_accreditation import DOCUMENT_MAX_BYTES

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
# Suggestions for the legal form (a free text field: the list is only a help).
LEGAL_FORMS = (
    "Association loi 1901",
    "SCIC",
    "SCOP",
    "SARL",
    "SAS",
    "SASU",
    "EURL",
    "Entreprise individuelle (micro-entreprise)",
    "Commune",
    "CCAS ou CIAS",
    "Établissement public",
)


class ApplicantForm(forms.Form):
    applicant_name = forms.CharField(
        label=_("Votre nom"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    applicant_email = forms.CharField(
        label=_("Votre adresse e-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("Nous vous écrivons à cette adresse au sujet de votre demande."),
    )
    applicant_phone = forms.CharField(
        label=_("Votre téléphone"),
        max_length=30,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
        help_text=_("Par exemple 05 56 00 00 00."),
    )


class OrganisationStepForm(forms.Form):
    legal_name = forms.CharField(
        label=_("Raison sociale"),
        max_length=200,
        help_text=_("Le nom officiel de votre structure, tel qu'il figure au répertoire SIRENE."),
    )
    siret = forms.CharField(
        label=_("SIRET"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("14 chiffres : le SIRET de l'établissement qui accueille le public."),
    )
    legal_form = forms.CharField(
        label=_("Forme juridique"),
        max_length=100,
        widget=forms.TextInput(attrs={"list": "legal-forms", "autocomplete": "off"}),
        help_text=_("Par exemple : association loi 1901, SCIC, SARL, commune."),
    )


class RepresentativeForm(forms.Form):
    legal_rep_name = forms.CharField(label=_("Nom du représentant légal"), max_length=150)
    legal_rep_title = forms.CharField(
        label=_("Qualité"),
        max_length=100,
        help_text=_("Président, gérante, directeur, maire…"),
    )


class BankForm(forms.Form):
    iban = forms.CharField(
        label=_("IBAN"),
        max_length=42,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "Tel qu'il figure sur votre RIB, par exemple FR76 3000 6000 0112 3456 7890 189."
        ),
    )
    bic = forms.CharField(
        label=_("BIC"),
        max_length=14,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("8 ou 11 caractères, par exemple AGRIFRPP."),
    )
    account_holder = forms.CharField(label=_("Titulaire du compte"), max_length=150)


class CharterForm(forms.Form):
    charter = forms.BooleanField(
        label=_("J'accepte la charte des lieux qualifiés APTIC au nom de ma structure."),
        required=False,
    )
    terms = forms.BooleanField(
        label=_("J'accepte les conditions d'utilisation de la plateforme et de remboursement."),
        required=False,
    )


STEP_FORMS: dict[str, type[forms.Form]] = {
    "applicant": ApplicantForm,
    "organisation": OrganisationStepForm,
    "representative": RepresentativeForm,
    "bank": BankForm,
    "charter": CharterForm,
}


class SiteForm(forms.Form):
    name = forms.CharField(
        label=_("Nom du lieu"),
        max_length=150,
        help_text=_("Le nom que les bénéficiaires verront, par exemple « EPN de la médiathèque »."),
    )
    address = forms.CharField(label=_("Adresse"), max_length=250)
    postcode = forms.CharField(
        label=_("Code postal"),
        max_length=5,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
    )
    city = forms.CharField(label=_("Commune"), max_length=120)
    departement = forms.CharField(
        label=_("Département"),
        max_length=3,
        required=False,
        help_text=_("Facultatif : déduit du code postal."),
    )
    services = forms.ModelMultipleChoiceField(
        label=_("Services proposés dans ce lieu"),
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Cochez au moins un service.")},
    )
    opening_hours = forms.CharField(
        label=_("Horaires d'accueil"),
        max_length=250,
        required=False,
        help_text=_("Par exemple : du mardi au samedi, de 9 h à 12 h 30 et de 14 h à 18 h."),
    )

    def __init__(self, *args, services=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["services"].queryset = services


class DocumentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type de pièce"), choices=DocumentKind.choices)
    file = forms.FileField(
        label=_("Fichier"),
        help_text=_("PDF, PNG ou JPEG, 5 Mo au plus."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # Early answer for the common case; the service checks size and content again.
        if upload is not None and upload.size > DOCUMENT_MAX_BYTES:
            raise forms.ValidationError(
                _("Ce fichier dépasse 5 Mo : envoyez une version plus légère.")
            )
        return upload


# --- Operator forms ----------------------------------------------------------------------------

QUEUE_STATUSES = [
    ("", _("À traiter (envoyées ou en examen)")),
    ("all", _("Toutes")),
    *AccreditationStatus.choices,
]


class QueueFilterForm(forms.Form):
    etat = forms.ChoiceField(label=_("État"), choices=QUEUE_STATUSES, required=False)
    departement = forms.CharField(label=_("Département"), max_length=3, required=False)
    q = forms.CharField(label=_("Nom ou SIRET"), max_length=100, required=False)


def _default_end():
    today = timezone.localdate()
    try:
        return today.replace(year=today.year + 2)
    except ValueError:  # 29 February
        return today.replace(year=today.year + 2, day=28)


class ApproveForm(forms.Form):
    valid_until = forms.DateField(
        label=_("Qualifié jusqu'au"), widget=DATE_WIDGET, initial=_default_end
    )


class RenewForm(forms.Form):
    valid_until = forms.DateField(label=_("Nouvelle date de fin"), widget=DATE_WIDGET)

    def __init__(self, *args, current=None, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        base = max(current, today) if current else today
        try:
            self.fields["valid_until"].initial = base.replace(year=base.year + 2)
        except ValueError:
            self.fields["valid_until"].initial = base + timedelta(days=730)


class ReinstateForm(forms.Form):
    valid_until = forms.DateField(
        label=_("Nouvelle date de fin (si la qualification a pris fin)"),
        widget=DATE_WIDGET,
        required=False,
    )


class CommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Ce que le lieu doit compléter ou corriger"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        error_messages={"required": _("Dites au lieu ce qu'il doit compléter.")},
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif du refus"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        error_messages={"required": _("Indiquez le motif du refus.")},
    )


class SuspendForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif de la suspension"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        error_messages={"required": _("Indiquez le motif de la suspension.")},
    )


class BankVerifyForm(forms.Form):
    iban = forms.CharField(widget=forms.HiddenInput, max_length=34)
