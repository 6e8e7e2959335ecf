"""What a scan means: the verdict on one cheque for a provider, a site and a service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from orgs.models import Accreditation, AccreditationSite, Organisation, ServiceCategory
from vouchers import codes
from vouchers.models import BookletStatus, Cheque, ChequeStatus

from ..models import Reason, RedemptionLine


@dataclass(frozen=True)
class Verdict:
    """One cheque's answer: the reason code, a French sentence, and the cheque when known."""

    scanned: str
    code: str | None
    reason: str
    detail: str
    cheque: Cheque | None = None

    @property
    def ok(self) -> bool:
        return self.reason == Reason.OK

    @property
    def value_cents(self) -> int:
        return self.cheque.value_cents if self.cheque else 0

    def as_error(self) -> dict:
        return {"code": self.code or self.scanned, "reason": self.reason, "detail": self.detail}


def _redeemed_detail(cheque: Cheque, provider: Organisation) -> str:
    line = (
        RedemptionLine.objects.filter(cheque=cheque, live=True)
        .select_related("redemption__site", "redemption__provider")
        .first()
    )
    if line is None or line.redemption.provider_id != provider.pk:
        return _("Ce chèque a déjà été encaissé.")
    redemption = line.redemption
    when = date_format(timezone.localtime(redemption.created_at), "d/m/Y à H:i")
    where = redemption.site.name if redemption.site else redemption.provider.name
    return _("Déjà encaissé chez vous le %(when)s (%(where)s).") % {"when": when, "where": where}


def judge(
    cheque: Cheque | None,
    *,
    scanned: str,
    code: str | None,
    provider: Organisation,
    accredited: bool,
    service: ServiceCategory | None = None,
    site: AccreditationSite | None = None,
    today: date | None = None,
) -> Verdict:
    """The verdict for one cheque already read from the database (or None if unknown)."""
    today = today or timezone.localdate()
    if code is None:
        return Verdict(
            scanned, None, Reason.INVALID_CODE, _("Code mal saisi : vérifiez chaque caractère.")
        )
    if cheque is None:
        return Verdict(scanned, code, Reason.UNKNOWN_CHEQUE, _("Aucun chèque ne porte ce code."))
    if cheque.status == ChequeStatus.REDEEMED:
        return Verdict(
            scanned, code, Reason.ALREADY_REDEEMED, _redeemed_detail(cheque, provider), cheque
        )
    if cheque.status == ChequeStatus.BLOCKED:
        return Verdict(
            scanned,
            code,
            Reason.BLOCKED,
            _("Chèque bloqué : %(reason)s.")
            % {"reason": cheque.blocked_reason or _("perte ou vol")},
            cheque,
        )
    if cheque.status == ChequeStatus.VOIDED:
        return Verdict(scanned, code, Reason.VOIDED, _("Chèque annulé (remplacé)."), cheque)
    if cheque.status == ChequeStatus.EXPIRED or (
        cheque.expires_on is not None and cheque.expires_on < today
    ):
        when = cheque.expires_on.strftime("%d/%m/%Y") if cheque.expires_on else ""
        return Verdict(
            scanned,
            code,
            Reason.EXPIRED,
            _("Chèque expiré depuis le %(date)s.") % {"date": when},
            cheque,
        )
    booklet = cheque.booklet
    if booklet.status != BookletStatus.ASSIGNED or cheque.expires_on is None:
        return Verdict(
            scanned,
            code,
            Reason.NOT_ELIGIBLE,
            _("Ce chèque n'a pas encore été remis à un bénéficiaire."),
            cheque,
        )
    if not accredited:
        return Verdict(
            scanned,
            code,
            Reason.NOT_ELIGIBLE,
            _("Votre structure n'est pas (ou plus) qualifiée pour encaisser."),
            cheque,
        )
    programme = booklet.programme
    if service is not None and not any(c.pk == service.pk for c in programme.categories.all()):
        return Verdict(
            scanned,
            code,
            Reason.NOT_ELIGIBLE,
            _("Ce service n'est pas financé par le programme « %(p)s ».") % {"p": programme.name},
            cheque,
        )
    if (
        site is not None
        and programme.departements
        and site.departement not in (programme.departements)
    ):
        return Verdict(
            scanned,
            code,
            Reason.NOT_ELIGIBLE,
            _("Ce lieu est hors du territoire du programme (%(d)s).")
            % {"d": ", ".join(programme.departements)},
            cheque,
        )
    return Verdict(scanned, code, Reason.OK, _("Chèque valide."), cheque)


def cheques_for_codes(parsed: list[str], *, lock: bool = False) -> dict[str, Cheque]:
    cheques = Cheque.objects.filter(code__in=parsed).select_related("booklet__programme")
    if lock:
        # Rows locked in a stable order, so overlapping baskets never deadlock.
        cheques = cheques.select_for_update(of=("self",)).order_by("pk")
    cheques = cheques.prefetch_related("booklet__programme__categories")
    return {cheque.code: cheque for cheque in cheques}


def cheque_verdicts(
    scanned: list[str],
    *,
    provider: Organisation,
    service: ServiceCategory | None = None,
    site: AccreditationSite | None = None,
    lock: bool = False,
) -> list[Verdict]:
    """Verdicts for scanned texts, in order (a code scanned twice appears once)."""
    today = timezone.localdate()
    unique: dict[str, str | None] = {}
    for raw in scanned:
        code = codes.parse(raw)
        unique.setdefault(code or raw.strip(), code)
    found = cheques_for_codes([c for c in unique.values() if c], lock=lock)
    accredited = Accreditation.objects.valid_on(today).filter(organisation=provider).exists()
    return [
        judge(
            found.get(code) if code else None,
            scanned=key,
            code=code,
            provider=provider,
            accredited=accredited,
            service=service,
            site=site,
            today=today,
        )
        for key, code in unique.items()
    ]
