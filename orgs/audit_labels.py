"""What each audit action means, in words: the journal shows these, the code stays beside them."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

ACTION_LABELS = {
    # Organisations, people, access
    "orgs.organisation.created": _("Organisation créée"),
    "orgs.invitation.created": _("Invitation envoyée"),
    "orgs.invitation.accepted": _("Invitation acceptée"),
    "orgs.invitation.revoked": _("Invitation retirée"),
    "orgs.membership.role_changed": _("Rôle d'un membre modifié"),
    "orgs.membership.removed": _("Membre retiré"),
    "orgs.api_token.created": _("Jeton d'API créé"),
    "orgs.api_token.revoked": _("Jeton d'API révoqué"),
    "orgs.user.password_reset": _("Mot de passe réinitialisé"),
    "orgs.user.language_set": _("Langue choisie"),
    "orgs.notification.failed": _("Échec d'envoi d'un e-mail"),
    "orgs.demo.seeded": _("Données de démonstration chargées"),
    "security.login_lockout.lifted": _("Blocage de connexion levé"),
    "security.two_factor.setup_started": _("Double authentification : configuration commencée"),
    "security.two_factor.enabled": _("Double authentification activée"),
    "security.two_factor.disabled": _("Double authentification désactivée"),
    "security.two_factor.verified": _("Double authentification : code vérifié"),
    "security.two_factor.backup_codes_renewed": _("Codes de secours renouvelés"),
    "exports.list.exported": _("Liste exportée"),
    # Accreditation
    "orgs.accreditation.started": _("Qualification : demande commencée"),
    "orgs.accreditation.step_saved": _("Qualification : étape enregistrée"),
    "orgs.accreditation.site_added": _("Qualification : lieu ajouté"),
    "orgs.accreditation.site_changed": _("Qualification : lieu modifié"),
    "orgs.accreditation.site_removed": _("Qualification : lieu retiré"),
    "orgs.accreditation.document_added": _("Qualification : justificatif ajouté"),
    "orgs.accreditation.document_removed": _("Qualification : justificatif retiré"),
    "orgs.accreditation.submitted": _("Qualification : demande envoyée"),
    "orgs.accreditation.review_started": _("Qualification : examen commencé"),
    "orgs.accreditation.approved": _("Qualification accordée"),
    "orgs.accreditation.changes_requested": _("Qualification : compléments demandés"),
    "orgs.accreditation.rejected": _("Qualification refusée"),
    "orgs.accreditation.suspended": _("Qualification suspendue"),
    "orgs.accreditation.reinstated": _("Qualification rétablie"),
    "orgs.accreditation.renewed": _("Qualification renouvelée"),
    "orgs.accreditation.expired": _("Qualification expirée"),
    "orgs.accreditation.bank_changed": _("Coordonnées bancaires modifiées"),
    "orgs.accreditation.bank_verified": _("Coordonnées bancaires vérifiées"),
    # Programmes, orders, printing
    "vouchers.programme.created": _("Programme créé"),
    "vouchers.programme.updated": _("Programme modifié"),
    "vouchers.programme.closed": _("Programme clos"),
    "vouchers.programme.expiry_warned": _("Alerte de fin de validité envoyée"),
    "vouchers.service.updated": _("Service du catalogue modifié"),
    "vouchers.order.created": _("Commande créée"),
    "vouchers.order.submitted": _("Commande transmise"),
    "vouchers.order.approved": _("Commande validée"),
    "vouchers.order.rejected": _("Commande refusée"),
    "vouchers.order.cancelled": _("Commande annulée"),
    "vouchers.order.issued": _("Chèques émis"),
    "vouchers.order.printed": _("Chéquiers prêts à imprimer"),
    "vouchers.print_run.started": _("Impression lancée"),
    "vouchers.print_chunk.rendered": _("Lot d'impression produit"),
    "vouchers.print_run.finished": _("Impression terminée"),
    # Booklets and cheques
    "vouchers.booklets.allocated": _("Chéquiers confiés"),
    "vouchers.booklets.returned": _("Chéquiers rendus"),
    "vouchers.booklet.assigned": _("Chéquier remis à un bénéficiaire"),
    "vouchers.booklet.limit_overridden": _("Limite par personne dépassée (autorisé)"),
    "vouchers.booklet.blocked": _("Chéquier bloqué"),
    "vouchers.booklet.replaced": _("Chéquier remplacé"),
    "vouchers.cheques.blocked": _("Chèques bloqués"),
    "vouchers.cheques.expired": _("Chèques expirés"),
    # Redemption and settlement
    "redemption.redeemed": _("Chèques encaissés"),
    "redemption.cancelled": _("Encaissement annulé"),
    "redemption.lockout.started": _("Encaissement suspendu (trop de refus)"),
    "redemption.batch.created": _("Lot de remboursement créé"),
    "redemption.batch.computed": _("Lot de remboursement calculé"),
    "redemption.batch.approved": _("Lot de remboursement approuvé"),
    "redemption.batch.exported": _("Fichier de virement SEPA produit"),
    "redemption.batch.paid": _("Lot de remboursement payé"),
    "redemption.payout.rejected": _("Virement rejeté par la banque"),
    "redemption.statement.ready": _("Relevé de remboursement prêt"),
}


def action_label(action: str) -> str:
    """The action in words, or its code when it has none (an action older than this list)."""
    return str(ACTION_LABELS.get(action, action))
