"""What a scan means: the verdict on one cheque for a provider, a site and a service."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from django.db import NotSupportedError, connections, router
from django.db.models import prefetch_related_objects
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic import rows
from aptic.dates import date_at_time
from orgs.models import Accreditation, AccreditationSite, Organisation, ServiceCategory
from vouchers import codes
from vouchers.models import Booklet, BookletStatus, Cheque, ChequeStatus, Programme

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
    when = date_at_time(redemption.created_at)
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
            scanned,
            None,
            Reason.INVALID_CODE,
            _("Ce code ne peut pas exister : comparez-le caractère par caractère avec le chèque."),
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
    if service is not None and not _funds(cheque, programme, service):
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


def _funds(cheque: Cheque, programme, service: ServiceCategory) -> bool:
    """Does the cheque's programme fund this service? Read with the cheque when possible."""
    if getattr(cheque, "funded_service_id", None) == service.pk:
        return cheque.funds_service
    return any(c.pk == service.pk for c in programme.categories.all())


@functools.lru_cache(maxsize=4096)
def _accredited_sql(db: str, provider_id: int, day: date) -> tuple[str, tuple]:
    """The SQL of ``Accreditation.objects.valid_on(day)`` for a provider, compiled once a day."""
    accredited = Accreditation.objects.using(db).valid_on(day).filter(organisation_id=provider_id)
    return accredited.values("pk").query.get_compiler(db).as_sql()


def cheques_for_codes(
    parsed: list[str],
    *,
    lock: bool = False,
    service: ServiceCategory | None = None,
    provider: Organisation | None = None,
    today: date | None = None,
) -> dict[str, Cheque]:
    """The cheques by code, each with its booklet and programme, in one query.

    What ``Cheque.objects.filter(code__in=parsed).select_related("booklet__programme")`` (with
    ``select_for_update(of=("self",)).order_by("pk")`` under ``lock``) returns, as model
    instances built the ORM's way (``from_db``, the fields' converters), from SQL written once:
    this read is on every check and redemption, and the query compiler was most of its cost.

    With ``service``, each cheque also says whether its programme funds it (``funds_service``);
    with ``provider``, whether the provider's accreditation is valid ``today``
    (``provider_accredited``, from ``Accreditation.objects.valid_on``): both are EXISTS in the
    same SELECT instead of a query each. Called with neither, the programmes' categories are
    prefetched instead, as before.
    """
    if not parsed:
        return {}
    db = router.db_for_write(Cheque) if lock else router.db_for_read(Cheque)
    connection = connections[db]
    if lock and connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )
    qn, programme_pk = connection.ops.quote_name, Programme._meta.pk.column
    layout = [
        (Cheque, rows.columns(Cheque, "c", db)),
        (Booklet, rows.columns(Booklet, "b", db)),
        (Programme, rows.columns(Programme, "p", db)),
    ]
    select = [column for _, columns in layout for column in columns.select]
    params: list = []
    if provider is not None:
        accredited_sql, accredited_params = _accredited_sql(
            db, provider.pk, today or timezone.localdate()
        )
        select.append(f"EXISTS ({accredited_sql})")
        params += accredited_params
    if service is not None:
        through = Programme.categories.through._meta
        select.append(
            f"EXISTS (SELECT 1 FROM {qn(through.db_table)} pc"  # noqa: S608 - names from _meta
            f" WHERE pc.{qn(through.get_field('programme').column)} = p.{qn(programme_pk)}"
            f" AND pc.{qn(through.get_field('servicecategory').column)} = %s)"
        )
        params.append(service.pk)
    if connection.vendor == "postgresql":
        # One array parameter: one statement to prepare whatever the basket's size.
        codes_in, code_params = "= ANY(%s)", [list(parsed)]
    else:
        codes_in, code_params = f"IN ({', '.join(['%s'] * len(parsed))})", list(parsed)
    sql = (
        f"SELECT {', '.join(select)} FROM {qn(Cheque._meta.db_table)} c"  # noqa: S608 - as above
        f" INNER JOIN {qn(Booklet._meta.db_table)} b"
        f" ON b.{qn(Booklet._meta.pk.column)} = c.{qn(Cheque._meta.get_field('booklet').column)}"
        f" INNER JOIN {qn(Programme._meta.db_table)} p"
        f" ON p.{qn(programme_pk)} = b.{qn(Booklet._meta.get_field('programme').column)}"
        f" WHERE c.{qn(Cheque._meta.get_field('code').column)} {codes_in}"
    )
    params += code_params
    if lock:
        # Rows locked in a stable order, so overlapping baskets never deadlock.
        sql += f" ORDER BY c.{qn(Cheque._meta.pk.column)}"
        if connection.features.has_select_for_update:  # as the ORM: ignored where unsupported
            if not connection.features.has_select_for_update_of:
                raise NotSupportedError("FOR UPDATE OF is not supported on this database backend.")
            sql += " FOR UPDATE OF c"
    with rows.prepared_cursor(db) as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    found: dict[str, Cheque] = {}
    extras_at = sum(len(columns.attnames) for _, columns in layout)
    for row in fetched:
        cheque, booklet, programme = rows.instances(layout, db, row)
        start = extras_at
        Booklet._meta.get_field("programme").set_cached_value(booklet, programme)
        Cheque._meta.get_field("booklet").set_cached_value(cheque, booklet)
        if provider is not None:
            cheque.provider_accredited = bool(row[start])
            start += 1
        if service is not None:
            cheque.funds_service = bool(row[start])
            cheque.funded_service_id = service.pk
        found[cheque.code] = cheque
    if provider is None and service is None:
        prefetch_related_objects(list(found.values()), "booklet__programme__categories")
    return found


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
    found = cheques_for_codes(
        [c for c in unique.values() if c],
        lock=lock,
        service=service,
        provider=provider,
        today=today,
    )
    # The accreditation is read with the cheques; judge() only asks it of a cheque found.
    return [
        judge(
            cheque := (found.get(code) if code else None),
            scanned=key,
            code=code,
            provider=provider,
            accredited=bool(cheque and cheque.provider_accredited),
            service=service,
            site=site,
            today=today,
        )
        for key, code in unique.items()
    ]
