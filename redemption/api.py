"""The redemption API: check a cheque, redeem a basket, cancel, list (providers)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from aptic.errors import NotFound, ValidationFailed
from orgs.api_permissions import HasPerm, current_membership
from orgs.audit import actor_from_request

from . import selectors
from .models import Reason, Redemption
from .services.abuse import scan_attempts_record
from .services.checks import cheque_verdicts
from .services.redeem import cheques_redeem, redemption_cancel
from .throttles import CounterThrottle


class ChequeOutput(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.CharField()
    value_cents = serializers.IntegerField()
    currency = serializers.CharField()
    expires_on = serializers.DateField(allow_null=True)
    programme = serializers.CharField()
    booklet = serializers.CharField()
    redeemable = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=Reason.choices)
    detail = serializers.CharField()


class ChequeCheck(APIView):
    """Is this cheque redeemable here? 400 ``invalid_code``, 404 ``unknown_cheque``."""

    permission_classes = [HasPerm("cheques:check")]
    throttle_classes = [CounterThrottle]

    @extend_schema(responses=ChequeOutput, operation_id="cheque_check")
    def get(self, request, code: str):
        membership = current_membership(request)
        [verdict] = cheque_verdicts([code], provider=membership.organisation)
        if not verdict.ok:
            scan_attempts_record(
                actor=actor_from_request(request), verdicts=[verdict], kind="check"
            )
        if verdict.reason == Reason.INVALID_CODE:
            raise ValidationFailed(verdict.detail, code="invalid_code")
        if verdict.reason == Reason.UNKNOWN_CHEQUE:
            raise NotFound(verdict.detail, code="unknown_cheque")
        cheque = verdict.cheque
        # The shape of ChequeOutput (the schema), built directly: every scan asks this, and
        # instantiating a serializer (a deep copy of its fields) was a good part of the cost.
        return Response(
            {
                "code": cheque.code,
                "status": cheque.status,
                "value_cents": cheque.value_cents,
                "currency": "EUR",
                "expires_on": cheque.expires_on.isoformat() if cheque.expires_on else None,
                "programme": cheque.booklet.programme.name,
                "booklet": cheque.booklet.number,
                "redeemable": verdict.ok,
                "reason": str(verdict.reason),
                "detail": str(verdict.detail),
            }
        )


class RedeemInput(serializers.Serializer):
    codes = serializers.ListField(
        child=serializers.CharField(max_length=64), allow_empty=False, max_length=50
    )
    service = serializers.SlugField(help_text="Slug of a catalogue service.")
    site = serializers.IntegerField(required=False, allow_null=True)


class RedemptionOutput(serializers.ModelSerializer):
    codes = serializers.SerializerMethodField()
    total_cents = serializers.IntegerField(source="amount_cents")
    service = serializers.CharField(source="service.slug")
    site = serializers.IntegerField(source="site_id", allow_null=True)

    class Meta:
        model = Redemption
        fields = (
            "id",
            "codes",
            "total_cents",
            "service",
            "site",
            "status",
            "created_at",
            "cancelled_at",
        )

    def get_codes(self, obj) -> list[str]:
        return [line.cheque.code for line in obj.lines.all()]


_WHEN = serializers.DateTimeField()


def redemption_answer(redemption: Redemption) -> dict:
    """``RedemptionOutput(redemption).data``, built directly for the answer to every redemption
    (instantiating the serializer, a deep copy of its fields, cost more than the rest)."""
    return {
        "id": redemption.pk,
        "codes": [line.cheque.code for line in redemption.lines.all()],
        "total_cents": redemption.amount_cents,
        "service": redemption.service.slug,
        "site": redemption.site_id,
        "status": redemption.status,
        "created_at": _WHEN.to_representation(redemption.created_at),
        "cancelled_at": _WHEN.to_representation(redemption.cancelled_at)
        if redemption.cancelled_at
        else None,
    }


class RedemptionListCreate(generics.ListAPIView):
    """The provider's redemptions, newest first; POST redeems a basket (Idempotency-Key)."""

    permission_classes = [HasPerm("redemptions:view")]
    serializer_class = RedemptionOutput

    def get_throttles(self):
        return [CounterThrottle()] if self.request.method == "POST" else []

    def get_permissions(self):
        key = "cheques:redeem" if self.request.method == "POST" else "redemptions:view"
        return [HasPerm(key)()]

    def get_queryset(self):
        return selectors.redemption_list(membership=current_membership(self.request))

    @extend_schema(
        request=RedeemInput,
        responses={201: RedemptionOutput},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request):
        membership = current_membership(request)
        data = RedeemInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        service = selectors.active_service(slug=values["service"])
        if service is None:
            raise ValidationFailed("Service inconnu.", field="service", code="unknown_service")
        site = None
        if values.get("site") is not None:
            site = get_object_or_404(
                selectors.provider_sites(membership=membership), pk=values["site"]
            )
        key = (request.headers.get("Idempotency-Key") or "").strip()[:100] or None
        redemption = cheques_redeem(
            actor=actor_from_request(request),
            codes=values["codes"],
            service=service,
            site=site,
            idempotency_key=key,
        )
        if "lines" not in getattr(redemption, "_prefetched_objects_cache", {}):
            # A replay returns the earlier redemption as stored: read it back with its lines.
            redemption = selectors.redemption_get(membership=membership, pk=redemption.pk)
        return Response(redemption_answer(redemption), status=status.HTTP_201_CREATED)


class RedemptionCancel(APIView):
    permission_classes = [HasPerm("redemptions:cancel")]

    @extend_schema(request=None, responses=RedemptionOutput)
    def post(self, request, pk: int):
        membership = current_membership(request)
        redemption = get_object_or_404(
            Redemption.objects.filter(provider=membership.organisation), pk=pk
        )
        redemption_cancel(actor=actor_from_request(request), redemption=redemption)
        redemption = selectors.redemption_get(membership=membership, pk=pk)
        return Response(RedemptionOutput(redemption).data)
