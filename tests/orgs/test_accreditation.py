"""Provider accreditation: the application step by step, its review by the operator, its
validity, and the bank details that payouts go to."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from datetime import timedelta
from html import unescape
from io import BytesIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from aptic.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from orgs import services_accreditation as svc
from orgs.audit import Actor
from orgs.demo import minimal_pdf
from orgs.models import (
    Accreditation,
    AccreditationDocument,
    AccreditationSite,
    AccreditationStatus,
    AuditEvent,
    BankStatus,
    MemberRole,
    Membership,
)
from orgs.selectors_accreditation import provider_is_accredited
from orgs.tasks import expire_accreditations
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    ServiceCategoryFactory,
    valid_siret,
)

pytestmark = pytest.mark.django_db

IBAN = "FR7630006000011234567890189"
BIC = "AGRIFRPP"
OTHER_IBAN = "FR1420041010050500013M02606"
OTHER_BIC = "PSSTFRPP"
APPLICANT = {
    "applicant_name": "Paul Garcia",
    "applicant_email": "paul.garcia@example.org",
    "applicant_phone": "05 56 12 34 56",
}
REPRESENTATIVE = {"legal_rep_name": "Martine Lacoste", "legal_rep_title": "Présidente"}
BANK = {"iban": "FR76 3000 6000 0112 3456 7890 189", "bic": BIC, "account_holder": "Cap Numérique"}


# --- Private storage ----------------------------------------------------------------------------


def _document_storage():
    return AccreditationDocument._meta.get_field("file").storage


def _point_storage_to(path: str) -> str:
    """Point the private storage at ``path``; returns the previous location."""
    storage = _document_storage()
    previous = storage._location
    storage._location = path
    for cached in ("base_location", "location"):
        storage.__dict__.pop(cached, None)
    return previous


@pytest.fixture(autouse=True)
def private_dir(tmp_path) -> Path:
    """Supporting documents go to a fresh folder: tests can see exactly what was stored."""
    folder = tmp_path / "private"
    folder.mkdir()
    previous = _point_storage_to(str(folder))
    yield folder
    _point_storage_to(previous)


def stored_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- Building blocks ----------------------------------------------------------------------------


def actor_for(membership: Membership) -> Actor:
    return Actor(user=membership.user, membership=membership)


def provider_member(role: str = MemberRole.ADMIN, **organisation) -> Membership:
    organisation = OrganisationFactory(is_funder=False, is_provider=True, **organisation)
    return MembershipFactory(organisation=organisation, role=role)


def operator_member() -> Membership:
    return MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_operator=True, name="Médias-Cité"),
        role=MemberRole.ADMIN,
    )


def png_bytes() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, "PNG")
    return buffer.getvalue()


def pdf_upload(name: str = "kbis.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, minimal_pdf("Extrait Kbis"), content_type="application/pdf")


def fill_application(member: Membership, services=None) -> Accreditation:
    """Every step of an application, through the services, ready to be sent."""
    actor = actor_for(member)
    services = services if services is not None else [ServiceCategoryFactory()]
    accreditation = svc.accreditation_get_or_start(actor=actor)
    steps = {
        "applicant": APPLICANT,
        "organisation": {
            "legal_name": member.organisation.name,
            "siret": member.organisation.siret,
            "legal_form": "Association loi 1901",
        },
        "representative": REPRESENTATIVE,
        "bank": BANK,
        "charter": {"charter": True, "terms": True},
    }
    for step, data in steps.items():
        svc.accreditation_save_step(actor=actor, accreditation=accreditation, step=step, data=data)
    svc.accreditation_site_save(
        actor=actor,
        accreditation=accreditation,
        name="EPN du centre",
        address="12 cours Victor Hugo",
        postcode="33000",
        city="Bordeaux",
        services=services,
    )
    svc.accreditation_document_add(
        actor=actor, accreditation=accreditation, kind="kbis", upload=pdf_upload()
    )
    return accreditation


def submitted_application(member: Membership, services=None) -> Accreditation:
    accreditation = fill_application(member, services)
    return svc.accreditation_submit(actor=actor_for(member), accreditation=accreditation)


def approved_application(member: Membership, operator: Membership, days: int = 730):
    accreditation = submitted_application(member)
    return svc.accreditation_approve(
        actor=actor_for(operator),
        accreditation=accreditation,
        valid_until=timezone.localdate() + timedelta(days=days),
    )


def text(response) -> str:
    body = unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"\s+", " ", body).replace("\u2019", "'")


def actions(accreditation: Accreditation) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(accreditation.pk), action__startswith="orgs.accr")
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def provider() -> Membership:
    return provider_member(name="Cap Numérique", postcode="33700", city="Mérignac")


@pytest.fixture
def operator() -> Membership:
    return operator_member()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the e-mails) of what happens inside the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# --- The application, step by step ------------------------------------------------------------


def test_a_provider_fills_the_application_over_several_visits(provider, client_for):
    client = client_for(provider)
    assert "Commencer ma demande" in text(client.get("/qualification/"))

    started = client.post("/qualification/commencer/")
    assert started["Location"] == "/qualification/vous/"
    step = client.get("/qualification/vous/")
    assert f'value="{provider.user.email}"' in step.content.decode()  # prefilled
    saved = client.post("/qualification/vous/", APPLICANT)
    assert saved["Location"] == "/qualification/structure/"
    # The organisation step comes prefilled from the organisation.
    markup = client.get("/qualification/structure/").content.decode()
    assert 'value="Cap Numérique"' in markup
    assert f'value="{provider.organisation.siret}"' in markup

    # Another day, another browser: what was saved is still there.
    later = client_for(provider)
    overview = text(later.get("/qualification/"))
    assert "Vos coordonnées fait" in overview
    assert "Votre structure à faire" in overview
    assert "Au moins un lieu d'accueil des bénéficiaires." in overview
    assert 'value="Paul Garcia"' in later.get("/qualification/vous/").content.decode()
    later.post(
        "/qualification/structure/",
        {
            "legal_name": "Cap Numérique",
            "siret": provider.organisation.siret,
            "legal_form": "Association loi 1901",
        },
    )
    later.post("/qualification/representant/", REPRESENTATIVE)
    services = [ServiceCategoryFactory(name="Démarches en ligne"), ServiceCategoryFactory()]
    added = later.post(
        "/qualification/lieux/nouveau/",
        {
            "name": "EPN du centre",
            "address": "12 avenue de la Marne",
            "postcode": "33700",
            "city": "Mérignac",
            "services": [services[0].pk],
        },
    )
    assert added["Location"] == "/qualification/lieux/"
    later.post("/qualification/documents/", {"kind": "kbis", "file": pdf_upload()})
    later.post("/qualification/banque/", BANK)
    last = later.post("/qualification/charte/", {"charter": "on", "terms": "on"})
    assert last["Location"] == "/qualification/"

    accreditation = Accreditation.objects.get(organisation=provider.organisation)
    assert accreditation.status == AccreditationStatus.DRAFT
    assert accreditation.applicant_phone == "05 56 12 34 56"
    assert accreditation.iban == IBAN  # stored compact
    assert accreditation.charter_accepted_at and accreditation.terms_accepted_at
    site = accreditation.sites.get()
    assert (site.departement, list(site.services.all())) == ("33", [services[0]])
    assert accreditation.documents.get().original_name == "kbis.pdf"
    overview = text(later.get("/qualification/"))
    assert "Tout est prêt" in overview
    assert actions(accreditation).count("orgs.accreditation.step_saved") == 5


def test_the_first_site_form_is_prefilled_with_the_organisations_address(provider, client_for):
    svc.accreditation_get_or_start(actor=actor_for(provider))
    markup = client_for(provider).get("/qualification/lieux/nouveau/").content.decode()
    assert f'value="{provider.organisation.address}"' in markup
    assert 'value="33700"' in markup


def test_a_siret_used_by_another_organisations_application_is_refused_and_nothing_saved(
    provider, client_for
):
    other = provider_member()
    taken = valid_siret(777)
    svc.accreditation_get_or_start(actor=actor_for(other))
    Accreditation.objects.filter(organisation=other.organisation).update(siret=taken)
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))
    before = Accreditation.objects.filter(pk=accreditation.pk).values().get()

    response = client_for(provider).post(
        "/qualification/structure/",
        {"legal_name": "Nouveau nom", "siret": taken, "legal_form": "SCIC"},
    )

    assert response.status_code == 200
    assert "Ce SIRET est déjà utilisé par une autre structure" in text(response)
    assert Accreditation.objects.filter(pk=accreditation.pk).values().get() == before
    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="organisation",
            data={"legal_name": "X", "siret": taken, "legal_form": "SCIC"},
        )
    assert (refused.value.code, refused.value.field) == ("siret_already_used", "siret")
    # Another organisation's own SIRET is not free either.
    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="organisation",
            data={"legal_name": "X", "siret": other.organisation.siret, "legal_form": "SCIC"},
        )
    assert refused.value.code == "siret_already_used"
    assert "orgs.accreditation.step_saved" not in actions(accreditation)


def test_the_database_keeps_a_siret_used_once_even_when_the_check_is_raced(provider, monkeypatch):
    other = provider_member()
    taken = valid_siret(778)
    svc.accreditation_get_or_start(actor=actor_for(other))
    Accreditation.objects.filter(organisation=other.organisation).update(siret=taken)
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))
    # As if another request took the SIRET between our check and our write.
    monkeypatch.setattr(svc, "_siret_used_elsewhere", lambda *args: False)

    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="organisation",
            data={"legal_name": "X", "siret": taken, "legal_form": "SCIC"},
        )

    assert refused.value.code == "siret_already_used"
    accreditation.refresh_from_db()
    assert accreditation.siret == provider.organisation.siret
    assert Accreditation.objects.filter(siret=taken).count() == 1


def test_an_invalid_siret_is_refused(provider):
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))
    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="organisation",
            data={"legal_name": "X", "siret": "12345678901234", "legal_form": "SCIC"},
        )
    assert refused.value.code == "invalid_siret"


def test_a_wrong_iban_and_bic_show_both_field_errors_and_save_nothing(provider, client_for):
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))

    response = client_for(provider).post(
        "/qualification/banque/",
        {"iban": "FR76 3000 6000 0112 3456 7890 188", "bic": "AGRI", "account_holder": "Cap"},
    )

    page = text(response)
    assert "Cet IBAN n'est pas valide" in page
    assert "Ce BIC n'est pas valide" in page
    markup = response.content.decode()
    assert markup.count('class="field has-error"') == 2
    accreditation.refresh_from_db()
    assert (accreditation.iban, accreditation.bic, accreditation.account_holder) == ("", "", "")


@pytest.mark.parametrize(
    ("iban", "bic", "field", "code"),
    [
        ("FR7630006000011234567890188", BIC, "iban", "invalid_iban"),  # checksum
        ("XX7630006000011234567890189", BIC, "iban", "invalid_iban"),
        (IBAN, "AGRIFRP", "bic", "invalid_bic"),
        (IBAN, "DEUTDEFF", "bic", "invalid_bic"),  # a German bank for a French account
    ],
)
def test_bank_details_are_checked_with_schwifty(provider, iban, bic, field, code):
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))
    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="bank",
            data={"iban": iban, "bic": bic, "account_holder": "Cap"},
        )
    assert (refused.value.field, refused.value.code) == (field, code)
    accreditation.refresh_from_db()
    assert accreditation.iban == ""


def test_a_guadeloupe_bic_goes_with_a_french_iban():
    assert svc.clean_bank_details(iban=IBAN, bic="BDAFGPGP", holder="EPN")[1] == "BDAFGPGP"


# --- Documents ----------------------------------------------------------------------------------


def test_documents_are_checked_by_content_not_by_name(provider, private_dir):
    actor = actor_for(provider)
    accreditation = svc.accreditation_get_or_start(actor=actor)

    image = svc.accreditation_document_add(
        actor=actor,
        accreditation=accreditation,
        kind="kbis",
        upload=SimpleUploadedFile("scan.pdf", png_bytes(), content_type="application/pdf"),
    )
    assert (image.content_type, image.original_name) == ("image/png", "scan.pdf")
    assert image.file.name.endswith(".png")
    stored = stored_files(private_dir)
    assert len(stored) == 1

    refused = [
        SimpleUploadedFile("setup.exe", b"MZ\x90\x00" + b"\x00" * 200),
        SimpleUploadedFile("kbis.pdf", b"Ceci est un simple texte, pas un PDF."),
        SimpleUploadedFile("vide.pdf", b""),
    ]
    for upload in refused:
        with pytest.raises(ValidationFailed) as error:
            svc.accreditation_document_add(
                actor=actor, accreditation=accreditation, kind="kbis", upload=upload
            )
        assert error.value.field == "file"
    assert stored_files(private_dir) == stored
    assert accreditation.documents.count() == 1


def test_a_file_over_5_mb_is_refused_and_nothing_is_stored(provider, private_dir, client_for):
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))
    big = minimal_pdf("gros") + b"%" * (5 * 1024 * 1024)

    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_document_add(
            actor=actor_for(provider),
            accreditation=accreditation,
            kind="kbis",
            upload=SimpleUploadedFile("gros.pdf", big),
        )
    response = client_for(provider).post(
        "/qualification/documents/",
        {"kind": "kbis", "file": SimpleUploadedFile("gros.pdf", big)},
    )

    assert refused.value.code == "file_too_large"
    assert "Ce fichier dépasse 5 Mo" in text(response)
    assert stored_files(private_dir) == []
    assert not AccreditationDocument.objects.exists()


def test_a_text_file_named_pdf_is_refused_on_the_page(provider, private_dir, client_for):
    svc.accreditation_get_or_start(actor=actor_for(provider))
    response = client_for(provider).post(
        "/qualification/documents/",
        {"kind": "kbis", "file": SimpleUploadedFile("kbis.pdf", b"hello")},
    )
    assert "Ce fichier n'est ni un PDF ni une image PNG ou JPEG." in text(response)
    assert stored_files(private_dir) == []


def test_a_removed_document_leaves_the_storage(provider, private_dir, on_commit):
    actor = actor_for(provider)
    accreditation = svc.accreditation_get_or_start(actor=actor)
    document = svc.accreditation_document_add(
        actor=actor, accreditation=accreditation, kind="kbis", upload=pdf_upload()
    )
    with on_commit():
        svc.accreditation_document_remove(
            actor=actor, accreditation=accreditation, document=document
        )
    assert stored_files(private_dir) == []
    assert "orgs.accreditation.document_removed" in actions(accreditation)


def test_documents_are_downloaded_by_their_provider_and_operators_only(
    provider, operator, client_for
):
    accreditation = fill_application(provider)
    document = accreditation.documents.get()
    url = f"/qualification/documents/{document.pk}/"

    own = client_for(provider).get(url)
    assert own.status_code == 200
    assert own["Content-Disposition"] == 'attachment; filename="kbis.pdf"'
    assert own["Content-Type"] == "application/pdf"
    assert b"".join(own.streaming_content).startswith(b"%PDF-")
    assert client_for(operator).get(url).status_code == 200
    assert client_for(provider_member()).get(url).status_code == 404
    assert client_for(provider_member(role=MemberRole.AGENT)).get(url).status_code in (403, 404)
    funder = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    assert client_for(funder).get(url).status_code in (403, 404)
    # The provider's agents do not handle the application.
    agent = MembershipFactory(organisation=provider.organisation, role=MemberRole.AGENT)
    assert client_for(agent).get(url).status_code == 403


# --- Sending ----------------------------------------------------------------------------------


def test_an_incomplete_application_is_refused_with_what_is_missing(provider, client_for):
    actor = actor_for(provider)
    accreditation = svc.accreditation_get_or_start(actor=actor)
    svc.accreditation_save_step(
        actor=actor, accreditation=accreditation, step="applicant", data=APPLICANT
    )
    site = svc.accreditation_site_save(
        actor=actor,
        accreditation=accreditation,
        name="Lieu sans service",
        address="1 rue A",
        postcode="33000",
        city="Bordeaux",
        services=[],
    )

    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_submit(actor=actor, accreditation=accreditation)

    error = refused.value
    assert error.code == "incomplete"
    assert error.extra["missing"] == [
        "organisation",  # prefilled, but the legal form is still missing
        "representative",
        "sites",
        "documents",
        "bank",
        "charter",
    ]
    assert f"Le lieu « {site.name} » ne propose encore aucun service." in error.extra["items"]
    assert "La pièce « Extrait Kbis ou avis de situation SIRENE »." in error.extra["items"]
    accreditation.refresh_from_db()
    assert (accreditation.status, accreditation.submitted_at) == (AccreditationStatus.DRAFT, None)
    assert "orgs.accreditation.submitted" not in actions(accreditation)

    page = text(client_for(provider).post("/qualification/envoyer/", follow=True))
    assert "Votre demande est incomplète" in page
    assert "Avant d'envoyer votre demande, il vous reste à fournir" in page
    assert "Le représentant légal : son nom et sa qualité." in page


def test_sending_locks_the_application_and_tells_the_operators(
    provider, operator, client_for, on_commit
):
    accreditation = fill_application(provider)
    client = client_for(provider)

    with on_commit():
        response = client.post("/qualification/envoyer/", follow=True)

    assert "Demande envoyée à Médias-Cité" in text(response)
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.SUBMITTED
    assert accreditation.submitted_at is not None
    to_operators = [m for m in mail.outbox if m.to == [operator.user.email]]
    assert len(to_operators) == 1
    assert "à examiner" in to_operators[0].subject
    assert f"/qualifications/{accreditation.pk}/" in to_operators[0].body
    assert any(provider.user.email in m.to for m in mail.outbox)
    # Locked: pages send back to the overview, services refuse.
    assert client.get("/qualification/vous/")["Location"] == "/qualification/"
    assert client.get("/qualification/lieux/nouveau/")["Location"] == "/qualification/"
    with pytest.raises(Conflict) as locked:
        svc.accreditation_save_step(
            actor=actor_for(provider),
            accreditation=accreditation,
            step="applicant",
            data=APPLICANT,
        )
    assert locked.value.code == "accreditation_locked"
    with pytest.raises(Conflict):
        svc.accreditation_document_add(
            actor=actor_for(provider),
            accreditation=accreditation,
            kind="other",
            upload=pdf_upload(),
        )
    with pytest.raises(Conflict):
        svc.accreditation_submit(actor=actor_for(provider), accreditation=accreditation)
    page = text(client.get("/qualification/"))
    assert "Elle n'est plus modifiable" in page
    assert "Envoyer ma demande" not in page
    assert "EPN du centre" in page  # the read-only summary


def test_an_agent_cannot_handle_the_application(provider, client_for):
    agent = MembershipFactory(organisation=provider.organisation, role=MemberRole.AGENT)
    accreditation = svc.accreditation_get_or_start(actor=actor_for(provider))

    assert client_for(agent).get("/qualification/").status_code == 403
    assert client_for(agent).post("/qualification/vous/", APPLICANT).status_code == 403
    with pytest.raises(NotAllowed):
        svc.accreditation_save_step(
            actor=actor_for(agent), accreditation=accreditation, step="applicant", data=APPLICANT
        )
    accreditation.refresh_from_db()
    assert accreditation.applicant_phone == ""


def test_a_provider_cannot_touch_another_providers_application(provider):
    other = svc.accreditation_get_or_start(actor=actor_for(provider_member()))
    with pytest.raises(NotFound):
        svc.accreditation_save_step(
            actor=actor_for(provider), accreditation=other, step="applicant", data=APPLICANT
        )


# --- Review ---------------------------------------------------------------------------------


def test_the_operator_approves_with_an_end_date(provider, operator, client_for, on_commit):
    accreditation = submitted_application(provider)
    client = client_for(operator)
    assert "Cap Numérique" in text(client.get("/qualifications/"))
    detail = client.get(f"/qualifications/{accreditation.pk}/")
    default_end = timezone.localdate().replace(year=timezone.localdate().year + 2)
    assert f'value="{default_end:%Y-%m-%d}"' in detail.content.decode()
    client.post(f"/qualifications/{accreditation.pk}/examiner/")
    end = timezone.localdate() + timedelta(days=700)

    with on_commit():
        response = client.post(
            f"/qualifications/{accreditation.pk}/approuver/", {"valid_until": f"{end:%Y-%m-%d}"}
        )

    assert response.status_code == 302
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.APPROVED
    assert accreditation.valid_until == end
    assert accreditation.reviewed_by == operator.user
    assert accreditation.bank_status == BankStatus.VERIFIED
    assert accreditation.bank_verified_by == operator.user
    assert accreditation.bank_verified_at is not None
    assert list(accreditation.sites.values_list("is_approved", flat=True)) == [True]
    assert provider_is_accredited(provider.organisation, timezone.localdate())
    [message] = [m for m in mail.outbox if provider.user.email in m.to]
    assert "lieu qualifié" in message.subject
    assert f"jusqu'au {end:%d/%m/%Y}" in message.body
    assert actions(accreditation)[-3:] == [
        "orgs.accreditation.submitted",
        "orgs.accreditation.review_started",
        "orgs.accreditation.approved",
    ]
    approved = AuditEvent.objects.get(action="orgs.accreditation.approved")
    assert approved.actor == operator.user
    assert approved.data["after"]["iban"] == "*" * 23 + "0189"
    assert f"Qualifié jusqu'au {end:%d/%m/%Y}" in text(client_for(provider).get("/qualification/"))


def test_an_end_date_in_the_past_is_refused(provider, operator, client_for):
    accreditation = submitted_application(provider)
    response = client_for(operator).post(
        f"/qualifications/{accreditation.pk}/approuver/",
        {"valid_until": f"{timezone.localdate():%Y-%m-%d}"},
    )
    assert response.status_code == 200
    assert "La date de fin de validité doit être dans le futur." in text(response)
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.SUBMITTED


def test_requested_changes_make_the_application_editable_again(
    provider, operator, client_for, on_commit
):
    accreditation = submitted_application(provider)
    client = client_for(operator)
    empty = client.post(f"/qualifications/{accreditation.pk}/complements/", {"comment": " "})
    assert "Dites au lieu ce qu'il doit compléter." in text(empty)

    with on_commit():
        client.post(
            f"/qualifications/{accreditation.pk}/complements/",
            {"comment": "Le Kbis a plus de trois mois : joignez un extrait récent."},
        )

    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.CHANGES_REQUESTED
    assert "Le Kbis a plus de trois mois" in mail.outbox[-1].body
    page = text(client_for(provider).get("/qualification/"))
    assert "Médias-Cité vous demande des compléments" in page
    assert "Le Kbis a plus de trois mois" in page
    svc.accreditation_save_step(
        actor=actor_for(provider),
        accreditation=accreditation,
        step="representative",
        data={"legal_rep_name": "Jeanne Martin", "legal_rep_title": "Présidente"},
    )
    svc.accreditation_submit(actor=actor_for(provider), accreditation=accreditation)
    assert accreditation.status == AccreditationStatus.SUBMITTED


def test_a_rejected_application_stays_rejected(provider, operator, on_commit):
    accreditation = submitted_application(provider)
    with pytest.raises(ValidationFailed):
        svc.accreditation_reject(actor=actor_for(operator), accreditation=accreditation, reason="")

    with on_commit():
        svc.accreditation_reject(
            actor=actor_for(operator),
            accreditation=accreditation,
            reason="Structure hors du champ de la médiation numérique.",
        )

    assert accreditation.status == AccreditationStatus.REJECTED
    assert "hors du champ" in mail.outbox[-1].body
    with pytest.raises(Conflict):
        svc.accreditation_approve(
            actor=actor_for(operator),
            accreditation=accreditation,
            valid_until=timezone.localdate() + timedelta(days=30),
        )
    with pytest.raises(Conflict):
        svc.accreditation_save_step(
            actor=actor_for(provider), accreditation=accreditation, step="applicant", data={}
        )


def test_only_operator_admins_review(provider, client_for):
    accreditation = submitted_application(provider)
    with pytest.raises(NotAllowed):
        svc.accreditation_approve(
            actor=actor_for(provider),
            accreditation=accreditation,
            valid_until=timezone.localdate() + timedelta(days=30),
        )
    funder = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    assert client_for(funder).get("/qualifications/").status_code == 403
    assert client_for(provider).get("/qualifications/").status_code == 403
    operator_agent = MembershipFactory(
        organisation=operator_member().organisation, role=MemberRole.AGENT
    )
    assert client_for(operator_agent).get("/qualifications/").status_code == 403


def test_suspension_and_reinstatement(provider, operator, on_commit):
    accreditation = approved_application(provider, operator)
    today = timezone.localdate()

    with on_commit():
        svc.accreditation_suspend(
            actor=actor_for(operator), accreditation=accreditation, reason="Contrôle en cours"
        )
    assert accreditation.status == AccreditationStatus.SUSPENDED
    assert not provider_is_accredited(provider.organisation, today)
    assert "Contrôle en cours" in mail.outbox[-1].body

    svc.accreditation_reinstate(actor=actor_for(operator), accreditation=accreditation)
    assert accreditation.status == AccreditationStatus.APPROVED
    assert provider_is_accredited(provider.organisation, today)

    # Suspended past its end date: reinstating needs a new end date.
    svc.accreditation_suspend(actor=actor_for(operator), accreditation=accreditation, reason="x")
    Accreditation.objects.filter(pk=accreditation.pk).update(valid_until=today - timedelta(days=1))
    with pytest.raises(ValidationFailed) as refused:
        svc.accreditation_reinstate(actor=actor_for(operator), accreditation=accreditation)
    assert refused.value.code == "validity_over"
    svc.accreditation_reinstate(
        actor=actor_for(operator),
        accreditation=accreditation,
        valid_until=today + timedelta(days=365),
    )
    assert accreditation.valid_until == today + timedelta(days=365)
    assert actions(accreditation).count("orgs.accreditation.suspended") == 2


def test_the_daily_task_expires_accreditations_past_their_end_date(provider, operator):
    accreditation = approved_application(provider, operator)
    still_valid = approved_application(provider_member(), operator)
    today = timezone.localdate()
    Accreditation.objects.filter(pk=accreditation.pk).update(valid_until=today - timedelta(days=1))
    Accreditation.objects.filter(pk=still_valid.pk).update(valid_until=today)

    assert expire_accreditations.delay().get() == 1
    assert expire_accreditations.delay().get() == 0  # idempotent

    accreditation.refresh_from_db()
    still_valid.refresh_from_db()
    assert accreditation.status == AccreditationStatus.EXPIRED
    assert still_valid.status == AccreditationStatus.APPROVED
    assert not provider_is_accredited(provider.organisation, today)
    [event] = AuditEvent.objects.filter(action="orgs.accreditation.expired")
    assert (event.target_id, event.actor) == (str(accreditation.pk), None)


def test_renewal_extends_an_approved_or_expired_accreditation(provider, operator, client_for):
    accreditation = approved_application(provider, operator, days=30)
    today = timezone.localdate()
    with pytest.raises(ValidationFailed):  # not later than the current end date
        svc.accreditation_renew(
            actor=actor_for(operator),
            accreditation=accreditation,
            valid_until=today + timedelta(days=10),
        )
    Accreditation.objects.filter(pk=accreditation.pk).update(valid_until=today - timedelta(days=1))
    svc.accreditations_expire()

    response = client_for(operator).post(
        f"/qualifications/{accreditation.pk}/renouveler/",
        {"valid_until": f"{today + timedelta(days=730):%Y-%m-%d}"},
    )

    assert response.status_code == 302
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.APPROVED
    assert accreditation.valid_until == today + timedelta(days=730)
    assert provider_is_accredited(provider.organisation, today)
    assert "orgs.accreditation.renewed" in actions(accreditation)


# --- Bank details after approval ------------------------------------------------------------


def test_a_new_iban_after_approval_is_unverified_and_audited_masked(
    provider, operator, client_for, on_commit
):
    accreditation = approved_application(provider, operator)
    client = client_for(provider)
    overview = text(client.get("/qualification/"))
    assert "vos remboursements sont suspendus jusqu'à cette vérification" in overview

    with on_commit():
        response = client.post(
            "/qualification/banque/",
            {"iban": OTHER_IBAN, "bic": OTHER_BIC, "account_holder": "Cap Numérique SCIC"},
        )

    assert response["Location"] == "/qualification/"
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.APPROVED
    assert (accreditation.iban, accreditation.bank_status) == (OTHER_IBAN, BankStatus.UNVERIFIED)
    assert accreditation.bank_verified_at is None
    event = AuditEvent.objects.get(action="orgs.accreditation.bank_changed")
    assert event.data["before"]["iban"] == "*" * 23 + "0189"
    assert event.data["after"]["iban"] == "*" * 23 + "2606"
    assert event.data["before"]["bank_status"] == "verified"
    assert event.data["after"]["bank_status"] == "unverified"
    assert IBAN not in str(event.data) and OTHER_IBAN not in str(event.data)
    warned = [m for m in mail.outbox if provider.user.email in m.to]
    assert "modifiées" in warned[-1].subject and OTHER_IBAN not in warned[-1].body
    assert any(m.to == [operator.user.email] for m in mail.outbox)

    # The operator checks the new RIB and verifies.
    review = client_for(operator)
    assert "Coordonnées bancaires à vérifier" in text(
        review.get(f"/qualifications/{accreditation.pk}/")
    )
    review.post(f"/qualifications/{accreditation.pk}/verifier-banque/", {"iban": OTHER_IBAN})
    accreditation.refresh_from_db()
    assert accreditation.bank_status == BankStatus.VERIFIED
    assert accreditation.bank_verified_by == operator.user


def test_verifying_bank_details_that_changed_meanwhile_verifies_nothing(provider, operator):
    accreditation = approved_application(provider, operator)
    svc.accreditation_bank_update(
        actor=actor_for(provider),
        accreditation=accreditation,
        iban=OTHER_IBAN,
        bic=OTHER_BIC,
        holder="Cap",
    )
    with pytest.raises(Conflict):
        svc.accreditation_bank_verify(
            actor=actor_for(operator), accreditation=accreditation, iban=IBAN
        )
    accreditation.refresh_from_db()
    assert accreditation.bank_status == BankStatus.UNVERIFIED


def test_the_same_bank_details_again_keep_their_verification(provider, operator):
    accreditation = approved_application(provider, operator)
    svc.accreditation_bank_update(
        actor=actor_for(provider),
        accreditation=accreditation,
        iban=IBAN,
        bic=BIC,
        holder=BANK["account_holder"],
    )
    assert accreditation.bank_status == BankStatus.VERIFIED


def test_bank_details_cannot_change_during_the_review(provider):
    accreditation = submitted_application(provider)
    with pytest.raises(Conflict):
        svc.accreditation_bank_update(
            actor=actor_for(provider),
            accreditation=accreditation,
            iban=OTHER_IBAN,
            bic=OTHER_BIC,
            holder="Cap",
        )


# --- Operator pages -----------------------------------------------------------------------------


def test_the_queue_filters_by_status_departement_and_name_or_siret(operator, client_for):
    gironde = provider_member(name="EPN de Pessac", departement="33")
    nord = provider_member(name="Lille numérique", departement="59", postcode="59000")
    submitted_application(gironde)
    submitted_application(nord)
    draft = provider_member(name="Brouillon SARL")
    svc.accreditation_get_or_start(actor=actor_for(draft))
    client = client_for(operator)

    def names(query: str) -> list[str]:
        page = client.get("/qualifications/" + query).content.decode()
        return re.findall(r'<a href="/qualifications/\d+/">([^<]+)</a>', page)

    assert sorted(names("")) == ["EPN de Pessac", "Lille numérique"]
    assert names("?departement=59") == ["Lille numérique"]
    assert names("?q=pessac") == ["EPN de Pessac"]
    assert names(f"?q={nord.organisation.siret}") == ["Lille numérique"]
    assert names("?etat=draft") == ["Brouillon SARL"]
    assert len(names("?etat=all")) == 3


def test_the_review_page_shows_everything_to_decide(provider, operator, client_for):
    services = [ServiceCategoryFactory(name="Démarches en ligne"), ServiceCategoryFactory()]
    accreditation = submitted_application(provider, services=services[:1])

    page = text(client_for(operator).get(f"/qualifications/{accreditation.pk}/"))

    for expected in (
        "Paul Garcia",
        "paul.garcia@example.org",
        provider.organisation.siret,
        "Association loi 1901",
        "Martine Lacoste",
        "EPN du centre",
        "Démarches en ligne",
        "kbis.pdf",
        "FR76 3000 6000 0112 3456 7890 189",
        "AGRIFRPP",
        "Qualifier la structure",
        "Demander des compléments",
        "Refuser la demande",
    ):
        assert expected in page, expected
    assert services[1].name not in page


def test_navigation_and_home_cards(provider, operator, client_for):
    provider_home = client_for(provider).get("/").content.decode()
    assert provider_home.count('href="/qualification/"') == 2
    operator_home = client_for(operator).get("/").content.decode()
    assert operator_home.count('href="/qualifications/"') == 2
    agent = MembershipFactory(organisation=provider.organisation, role=MemberRole.AGENT)
    assert 'href="/qualification/"' not in client_for(agent).get("/").content.decode()


def test_a_pending_application_accredits_nothing_yet(provider):
    accreditation = submitted_application(provider)
    assert not provider_is_accredited(provider.organisation)
    assert not AccreditationSite.objects.filter(accreditation=accreditation, is_approved=True)


# --- The tenancy walk (tests/test_tenancy.py) ---------------------------------------------------

_TENANCY_DIR: list[str] = []


def _tenancy_storage() -> None:
    """The walk's documents go to a throw-away folder, not the developer's private media."""
    if not _TENANCY_DIR:
        folder = tempfile.mkdtemp(prefix="aptic-tenancy-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _TENANCY_DIR.append(folder)
        _point_storage_to(folder)


def tenancy_site_kwargs(owner: Membership) -> dict:
    """A site of the owner's draft application."""
    _tenancy_storage()
    accreditation = svc.accreditation_get_or_start(actor=actor_for(owner))
    site = svc.accreditation_site_save(
        actor=actor_for(owner),
        accreditation=accreditation,
        name="Lieu",
        address="1 rue A",
        postcode="33000",
        city="Bordeaux",
        services=[ServiceCategoryFactory()],
    )
    return {"pk": site.pk}


def tenancy_document_kwargs(owner: Membership) -> dict:
    """A document of the owner's draft application."""
    _tenancy_storage()
    accreditation = svc.accreditation_get_or_start(actor=actor_for(owner))
    document = svc.accreditation_document_add(
        actor=actor_for(owner), accreditation=accreditation, kind="kbis", upload=pdf_upload()
    )
    return {"pk": document.pk}


def tenancy_accreditation_kwargs(owner: Membership) -> dict:
    """The owner's submitted application (for the operator's routes)."""
    _tenancy_storage()
    return {"pk": submitted_application(owner).pk}
