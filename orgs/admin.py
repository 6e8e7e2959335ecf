"""Django admin: a read-only window for support staff. Changes go through the services."""

from django.contrib import admin

from .models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organisation,
    User,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ("name", "siret", "postcode", "is_funder", "is_distributor", "is_provider")
    search_fields = ("name", "siret")


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ("email", "full_name", "is_active", "is_staff")
    search_fields = ("email", "full_name")
    exclude = ("password",)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "organisation", "role", "removed_at")


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "organisation", "role", "expires_at", "accepted_at", "revoked_at")
    exclude = ("token_hash",)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "membership", "created_at", "revoked_at")
    exclude = ("key_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor", "organisation", "target_label", "ip")
    list_filter = ("action",)
    search_fields = ("action", "target_label")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "recipient", "template", "organisation", "status")
    list_filter = ("status", "template")
    search_fields = ("recipient", "subject")
