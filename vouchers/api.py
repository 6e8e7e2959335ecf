"""API of the vouchers app: orders (funders) and the programmes they order from."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from orgs.api_permissions import HasPerm, current_membership
from orgs.audit import actor_from_request

from . import selectors
from .models import BOOKLET_SIZES, Order, Programme
from .services import orders as order_services


class ProgrammeOutput(serializers.ModelSerializer):
    booklet_sizes = serializers.ListField(child=serializers.IntegerField())
    currency = serializers.SerializerMethodField()
    fee_rate_percent = serializers.SerializerMethodField()

    class Meta:
        model = Programme
        fields = (
            "id",
            "name",
            "cheque_value_cents",
            "currency",
            "booklet_sizes",
            "validity_kind",
            "valid_until",
            "tolerance_days",
            "validity_months",
            "departements",
            "fee_rate_percent",
            "max_booklets_per_order",
            "is_active",
        )

    def get_currency(self, obj) -> str:
        return "EUR"

    def get_fee_rate_percent(self, obj) -> float:
        return obj.fee_rate_bp / 100


class OrderLineOutput(serializers.Serializer):
    booklet_size = serializers.IntegerField()
    quantity = serializers.IntegerField()


class OrderOutput(serializers.ModelSerializer):
    programme = serializers.CharField(source="programme.name")
    programme_id = serializers.IntegerField()
    lines = OrderLineOutput(many=True)
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = (
            "id",
            "reference",
            "status",
            "programme_id",
            "programme",
            "lines",
            "purchase_order_number",
            "print_text",
            "face_value_cents",
            "fee_cents",
            "total_cents",
            "currency",
            "created_at",
            "submitted_at",
            "approved_at",
            "issued_at",
            "printed_at",
            "cancelled_at",
            "rejected_at",
            "rejection_reason",
        )

    def get_currency(self, obj) -> str:
        return "EUR"


class OrderLineInput(serializers.Serializer):
    booklet_size = serializers.ChoiceField(choices=BOOKLET_SIZES)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)


class OrderInput(serializers.Serializer):
    programme = serializers.IntegerField()
    lines = OrderLineInput(many=True, allow_empty=False)
    purchase_order_number = serializers.CharField(max_length=60, required=False, allow_blank=True)
    print_text = serializers.CharField(max_length=200, required=False, allow_blank=True)
    submit = serializers.BooleanField(
        default=False, help_text="Submit the order for approval at once (else it stays a draft)."
    )

    def validate_lines(self, lines):
        sizes = [line["booklet_size"] for line in lines]
        if len(sizes) != len(set(sizes)):
            raise serializers.ValidationError("One line per booklet size.")
        return lines


class ProgrammeList(generics.ListAPIView):
    """Programmes the caller's organisation may order from (operators: all)."""

    permission_classes = [HasPerm("orders:view")]
    serializer_class = ProgrammeOutput

    def get_queryset(self):
        return selectors.programme_list(membership=current_membership(self.request))


class OrderListCreate(generics.ListAPIView):
    """Orders of the caller's organisation, newest first; POST creates one."""

    permission_classes = [HasPerm("orders:view")]
    serializer_class = OrderOutput

    def get_queryset(self):
        return selectors.order_list(membership=current_membership(self.request))

    @extend_schema(request=OrderInput, responses={201: OrderOutput})
    def post(self, request):
        membership = current_membership(request)
        data = OrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        programme = selectors.programme_get(membership=membership, pk=values["programme"])
        actor = actor_from_request(request)
        with transaction.atomic():
            order = order_services.order_create(
                actor=actor,
                programme=programme,
                lines={line["booklet_size"]: line["quantity"] for line in values["lines"]},
                purchase_order_number=values.get("purchase_order_number", ""),
                print_text=values.get("print_text", ""),
            )
            if values["submit"]:
                order = order_services.order_submit(actor=actor, order=order)
        return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)


class OrderDetail(generics.RetrieveAPIView):
    permission_classes = [HasPerm("orders:view")]
    serializer_class = OrderOutput

    def get_object(self):
        return selectors.order_get(
            membership=current_membership(self.request), pk=self.kwargs["pk"]
        )
