"""The payouts API: a provider's payouts (operators: all) with links to their statements."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers

from orgs.api_permissions import HasPerm, current_membership

from .models import Payout, PayoutStatus
from .views_settlement import payouts_of


class PayoutOutput(serializers.ModelSerializer):
    batch = serializers.CharField(source="batch.reference", help_text="Batch reference.")
    period_end = serializers.DateField(
        source="batch.period_end", help_text="Redemptions up to this day (inclusive)."
    )
    status = serializers.ChoiceField(choices=PayoutStatus.choices)
    currency = serializers.SerializerMethodField()
    statement_pdf = serializers.SerializerMethodField()
    statement_csv = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(
        source="batch.computed_at", help_text="When the batch computed this payout."
    )

    class Meta:
        model = Payout
        fields = (
            "id",
            "batch",
            "period_end",
            "status",
            "amount_cents",
            "currency",
            "redemption_count",
            "statement_pdf",
            "statement_csv",
            "created_at",
        )

    def get_currency(self, obj) -> str:
        return "EUR"

    def _statement_url(self, obj: Payout, route: str) -> str | None:
        if obj.statement_ready_at is None:
            return None  # still being rendered

        return self.context["request"].build_absolute_uri(
            reverse(f"settlement:{route}", args=[obj.pk])
        )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_statement_pdf(self, obj) -> str | None:
        return self._statement_url(obj, "statement_pdf")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_statement_csv(self, obj) -> str | None:
        return self._statement_url(obj, "statement_csv")


class PayoutList(generics.ListAPIView):
    """The caller's payouts (operators: every provider's), newest batch first.

    ``statement_pdf`` and ``statement_csv`` are null while the statement is being rendered.
    """

    permission_classes = [HasPerm("payouts:view")]
    serializer_class = PayoutOutput

    @extend_schema(operation_id="payouts_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return payouts_of(membership=current_membership(self.request))
