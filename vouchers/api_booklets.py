"""API of the distribution: booklets visible to funders and distributors, and the hand-over."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from orgs.api_permissions import HasPerm, current_membership
from orgs.audit import actor_from_request
from orgs.selectors_geo import postcode_exists

from .models import AgeBracket, Booklet, BookletStatus, Gender, Situation
from .services.distribution import Person, booklet_assign


class BookletOutput(serializers.ModelSerializer):
    programme = serializers.CharField(source="programme.name")
    value_cents = serializers.IntegerField()
    currency = serializers.SerializerMethodField()
    holder = serializers.CharField(source="holder.name", default=None)
    expires_on = serializers.SerializerMethodField()

    class Meta:
        model = Booklet
        fields = (
            "number",
            "status",
            "size",
            "value_cents",
            "currency",
            "programme",
            "holder",
            "expires_on",
            "allocated_at",
            "assigned_at",
            "blocked_reason",
        )

    def get_currency(self, obj) -> str:
        return "EUR"

    def get_expires_on(self, obj) -> str | None:
        day = obj.programme.last_valid_day
        return day.isoformat() if day else None


def _booklets(request):
    return (
        Booklet.objects.visible_to(current_membership(request))
        .select_related("programme", "holder")
        .order_by("number")
    )


class BookletList(generics.ListAPIView):
    """Booklets the caller's organisation funds or holds (filter with ?status=)."""

    permission_classes = [HasPerm("booklets:view")]
    serializer_class = BookletOutput

    def get_queryset(self):
        booklets = _booklets(self.request)
        wanted = self.request.query_params.get("status")
        if wanted in BookletStatus.values:
            booklets = booklets.filter(status=wanted)
        return booklets


class BookletDetail(generics.RetrieveAPIView):
    permission_classes = [HasPerm("booklets:view")]
    serializer_class = BookletOutput

    def get_object(self):
        return get_object_or_404(_booklets(self.request), number=self.kwargs["number"].upper())


class AssignInput(serializers.Serializer):
    age_bracket = serializers.ChoiceField(choices=AgeBracket.choices)
    postcode = serializers.RegexField(r"^[0-9]{5}$")
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    situation = serializers.ChoiceField(choices=Situation.choices, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, help_text="Used for the limit, not stored.")
    first_name = serializers.CharField(max_length=150, help_text="Used for the limit, not stored.")
    birth_date = serializers.DateField(help_text="Used for the limit, not stored.")
    override_reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate_postcode(self, value: str) -> str:
        # As at the counter: the receipt lists the places nearest to a real postcode.
        if not postcode_exists(value):
            raise serializers.ValidationError(
                _("Le code postal %(cp)s n'existe pas : vérifiez-le avec la personne.")
                % {"cp": value},
                code="unknown_postcode",
            )
        return value


class ReceiptOutput(serializers.Serializer):
    beneficiary = serializers.CharField()
    booklet = serializers.CharField()
    value_cents = serializers.IntegerField()
    currency = serializers.CharField()
    cheques = serializers.IntegerField()
    expires_on = serializers.DateField(allow_null=True)
    assigned_at = serializers.DateTimeField()


class BookletAssign(APIView):
    """Hand a booklet the caller's organisation holds to a person (pseudonymous receipt)."""

    permission_classes = [HasPerm("booklets:assign")]

    @extend_schema(request=AssignInput, responses={201: ReceiptOutput})
    def post(self, request, number: str):
        membership = current_membership(request)
        booklet = get_object_or_404(
            Booklet.objects.filter(holder=membership.organisation).select_related("programme"),
            number=number.upper(),
        )
        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        beneficiary = booklet_assign(
            actor=actor_from_request(request),
            booklet=booklet,
            person=Person(values["last_name"], values["first_name"], values["birth_date"]),
            age_bracket=values["age_bracket"],
            postcode=values["postcode"],
            gender=values.get("gender", ""),
            situation=values.get("situation", ""),
            override_reason=values.get("override_reason", ""),
        )
        booklet.refresh_from_db()
        first_cheque = booklet.cheques.order_by("position").first()
        receipt = {
            "beneficiary": beneficiary.reference,
            "booklet": booklet.number,
            "value_cents": booklet.value_cents,
            "currency": "EUR",
            "cheques": booklet.size,
            "expires_on": first_cheque.expires_on if first_cheque else None,
            "assigned_at": booklet.assigned_at,
        }
        return Response(ReceiptOutput(receipt).data, status=status.HTTP_201_CREATED)
