"""API views of the orgs app."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .api_permissions import current_membership
from .permissions import permissions_of


class MeOutput(serializers.Serializer):
    email = serializers.EmailField()
    full_name = serializers.CharField()
    organisation = serializers.CharField()
    organisation_slug = serializers.CharField()
    organisation_roles = serializers.ListField(child=serializers.CharField())
    member_role = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())


class MeView(APIView):
    """Who the caller is and what they may do: handy to check a token."""

    @extend_schema(responses=MeOutput, operation_id="me")
    def get(self, request):
        membership = current_membership(request)
        return Response(
            MeOutput(
                {
                    "email": request.user.email,
                    "full_name": request.user.full_name,
                    "organisation": membership.organisation.name,
                    "organisation_slug": membership.organisation.slug,
                    "organisation_roles": membership.organisation.roles,
                    "member_role": membership.role,
                    "permissions": sorted(permissions_of(membership)),
                }
            ).data
        )
