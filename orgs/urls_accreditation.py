"""Accreditation pages: the provider's application (/qualification/) and the operator's review
(/qualifications/)."""

from django.urls import path

from . import views_accreditation as views

# One URL per form step, named alike: reverse("accreditation_step", kwargs={"step": "bank"}).
_STEP_PAGES = [
    path(
        f"qualification/{slug}/",
        views.accreditation_step,
        {"step": step},
        name="accreditation_step",
    )
    for step, slug in views.STEP_SLUGS.items()
    if step not in ("sites", "documents")
]

urlpatterns = [
    # The provider's application
    path("qualification/", views.accreditation_overview, name="accreditation_overview"),
    path("qualification/commencer/", views.accreditation_start, name="accreditation_start"),
    path("qualification/envoyer/", views.accreditation_submit, name="accreditation_submit"),
    path("qualification/lieux/", views.accreditation_sites, name="accreditation_sites"),
    path(
        "qualification/lieux/nouveau/",
        views.accreditation_site_add,
        name="accreditation_site_add",
    ),
    path(
        "qualification/lieux/<int:pk>/",
        views.accreditation_site_edit,
        name="accreditation_site_edit",
    ),
    path(
        "qualification/lieux/<int:pk>/retirer/",
        views.accreditation_site_remove,
        name="accreditation_site_remove",
    ),
    path(
        "qualification/documents/",
        views.accreditation_documents,
        name="accreditation_documents",
    ),
    path(
        "qualification/documents/<int:pk>/",
        views.accreditation_document_download,
        name="accreditation_document_download",
    ),
    path(
        "qualification/documents/<int:pk>/retirer/",
        views.accreditation_document_remove,
        name="accreditation_document_remove",
    ),
    *_STEP_PAGES,
    # The operator's review
    path("qualifications/", views.accreditation_queue, name="accreditation_queue"),
    path("qualifications/<int:pk>/", views.accreditation_review, name="accreditation_review"),
    path(
        "qualifications/<int:pk>/examiner/",
        views.accreditation_start_review,
        name="accreditation_start_review",
    ),
    path(
        "qualifications/<int:pk>/approuver/",
        views.accreditation_approve,
        name="accreditation_approve",
    ),
    path(
        "qualifications/<int:pk>/complements/",
        views.accreditation_request_changes,
        name="accreditation_request_changes",
    ),
    path(
        "qualifications/<int:pk>/refuser/",
        views.accreditation_reject,
        name="accreditation_reject",
    ),
    path(
        "qualifications/<int:pk>/suspendre/",
        views.accreditation_suspend,
        name="accreditation_suspend",
    ),
    path(
        "qualifications/<int:pk>/retablir/",
        views.accreditation_reinstate,
        name="accreditation_reinstate",
    ),
    path(
        "qualifications/<int:pk>/renouveler/",
        views.accreditation_renew,
        name="accreditation_renew",
    ),
    path(
        "qualifications/<int:pk>/verifier-banque/",
        views.accreditation_bank_verify,
        name="accreditation_bank_verify",
    ),
]
