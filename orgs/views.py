"""Web pages of the orgs app: thin — parse a form, call a service or a selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from aptic import exports
from aptic.errors import DomainError, form_add_error
from aptic.listing import query_without_page

from . import selectors, services
from .audit import actor_from_request, client_ip
from .decorators import membership_required
from .exports import MEMBER_COLUMNS, ORGANISATION_COLUMNS, audit_columns, notification_columns
from .forms import (
    ApiTokenForm,
    AuditedSetPasswordForm,
    AuditFilterForm,
    EmailAuthenticationForm,
    InvitationAcceptForm,
    InvitationForm,
    LoggedPasswordResetForm,
    MemberRoleForm,
    NotificationFilterForm,
    OrganisationForm,
)
from .middleware import SESSION_KEY
from .notifications import EMAIL_KINDS
from .permissions import membership_has_permission


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    form_class = LoggedPasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = AuditedSetPasswordForm
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.ip = client_ip(self.request)
        return form


def language_set(request: HttpRequest) -> HttpResponse:
    """Django's language switch; a signed-in person's choice also sets their e-mails' language."""
    response = set_language(request)
    if request.method == "POST" and request.user.is_authenticated:
        services.user_language_set(
            actor=actor_from_request(request), language=request.POST.get("language", "")
        )
    return response


@require_POST
@membership_required()
def switch_membership(request: HttpRequest) -> HttpResponse:
    """Act for another of the person's organisations (unknown ids are ignored: no leak)."""
    try:
        wanted = int(request.POST.get("membership", ""))
    except ValueError:
        wanted = None
    memberships = selectors.memberships_of_user(user=request.user)
    chosen = next((m for m in memberships if m.pk == wanted), None)
    if chosen is not None:
        request.session[SESSION_KEY] = chosen.pk
        messages.success(
            request, _("Vous agissez maintenant pour %(org)s.") % {"org": chosen.organisation}
        )
    return redirect("home")


# --- Organisations (operators) -------------------------------------------------------------


@membership_required("organisations:view_all")
def organisation_list(request: HttpRequest) -> HttpResponse:
    organisations = selectors.organisation_list(membership=request.membership)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=organisations,
            columns=ORGANISATION_COLUMNS,
            filename="organisations",
            fmt=fmt,
            title=_("Organisations"),
        )
    return render(request, "orgs/organisation_list.html", {"organisations": organisations})


@membership_required("organisations:create")
def organisation_create(request: HttpRequest) -> HttpResponse:
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organisation, _invitation = services.organisation_create(
                actor=actor_from_request(request), **form.cleaned_data
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                _("%(org)s est créée ; une invitation a été envoyée à %(email)s.")
                % {"org": organisation.name, "email": form.cleaned_data["admin_email"]},
            )
            return redirect("organisation_detail", pk=organisation.pk)
    return render(request, "orgs/organisation_form.html", {"form": form})


@membership_required()
def organisation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = selectors.organisation_get(membership=request.membership, pk=pk)
    members = organisation.memberships.active().select_related("user")
    return render(
        request,
        "orgs/organisation_detail.html",
        {"organisation": organisation, "members": members},
    )


# --- Members ------------------------------------------------------------------------------


@membership_required("members:view")
def member_list(request: HttpRequest) -> HttpResponse:
    members = selectors.member_list(membership=request.membership)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=members,
            columns=MEMBER_COLUMNS,
            filename="membres",
            fmt=fmt,
            title=_("Membres"),
        )
    return render(
        request,
        "orgs/member_list.html",
        {
            "members": members,
            "invitations": selectors.invitation_list_pending(membership=request.membership),
            "form": InvitationForm(),
        },
    )


@membership_required("members:manage")
def member_invite(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_create(actor=actor_from_request(request), **form.cleaned_data)
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                _("Invitation envoyée à %(email)s.") % {"email": form.cleaned_data["email"]},
            )
            return redirect("member_list")
    return render(request, "orgs/member_invite.html", {"form": form})


@membership_required("members:manage")
def member_edit(request: HttpRequest, pk: int) -> HttpResponse:
    member = selectors.member_get(membership=request.membership, pk=pk)
    form = MemberRoleForm(request.POST or None, initial={"role": member.role})
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_change_role(
                actor=actor_from_request(request), membership=member, role=form.cleaned_data["role"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Rôle mis à jour."))
            return redirect("member_list")
    return render(request, "orgs/member_edit.html", {"member": member, "form": form})


@require_POST
@membership_required("members:manage")
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    member = selectors.member_get(membership=request.membership, pk=pk)
    try:
        services.membership_remove(actor=actor_from_request(request), membership=member)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(
            request, _("%(name)s a été retiré de l'organisation.") % {"name": member.user}
        )
    return redirect("member_list")


@require_POST
@membership_required("members:manage")
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = selectors.invitation_get(membership=request.membership, pk=pk)
    try:
        services.invitation_revoke(actor=actor_from_request(request), invitation=invitation)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Invitation annulée."))
    return redirect("member_list")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Public page behind the e-mailed link: create the account, or join with the current one."""
    try:
        invitation = services.invitation_get_by_token(token=token)
    except DomainError as exc:
        return render(
            request, "orgs/invitation_invalid.html", {"error": exc.message}, status=exc.status_code
        )
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and (signed_in or form.is_valid()):
        data = {} if signed_in else form.cleaned_data
        try:
            membership = services.invitation_accept(
                token=token,
                user=request.user if signed_in else None,
                full_name=data.get("full_name", ""),
                password=data.get("password", ""),
                ip=client_ip(request),
            )
        except DomainError as exc:
            if form is not None:
                form_add_error(form, exc)
            else:
                messages.error(request, str(exc.message))
        else:
            if not signed_in:
                from django.contrib.auth import login

                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_KEY] = membership.pk
            messages.success(
                request, _("Bienvenue dans %(org)s.") % {"org": membership.organisation}
            )
            return redirect("home")
    return render(
        request,
        "orgs/invitation_accept.html",
        {"invitation": invitation, "form": form, "signed_in": signed_in},
    )


# --- API tokens ---------------------------------------------------------------------------


@membership_required("tokens:manage")
def token_list(request: HttpRequest) -> HttpResponse:
    members = selectors.member_list(membership=request.membership)
    form = ApiTokenForm(
        request.POST or None, members=members, initial={"membership": request.membership.pk}
    )
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            member = selectors.member_get(
                membership=request.membership, pk=form.cleaned_data["membership"]
            )
            token, new_key = services.api_token_create(
                actor=actor_from_request(request), membership=member, name=form.cleaned_data["name"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            form = ApiTokenForm(members=members, initial={"membership": request.membership.pk})
            messages.success(request, _("Jeton « %(name)s » créé.") % {"name": token.name})
    return render(
        request,
        "orgs/token_list.html",
        {
            "tokens": selectors.api_token_list(membership=request.membership),
            "form": form,
            "new_key": new_key,
        },
    )


@require_POST
@membership_required("tokens:manage")
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.api_token_get(membership=request.membership, pk=pk)
    try:
        services.api_token_revoke(actor=actor_from_request(request), token=token)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Jeton « %(name)s » révoqué.") % {"name": token.name})
    return redirect("token_list")


# --- Audit log ----------------------------------------------------------------------------


@membership_required("audit:view")
def audit_list(request: HttpRequest) -> HttpResponse:
    sees_all = membership_has_permission(request.membership, "audit:view_all")
    form = AuditFilterForm(
        request.GET or None,
        organisations=selectors.organisation_list(membership=request.membership)
        if sees_all
        else None,
    )
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.audit_event_list(
        membership=request.membership,
        action=filters.get("action", ""),
        organisation_id=filters.get("organisation"),
        actor_email=filters.get("actor", ""),
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    )
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=events,
            columns=audit_columns(with_organisation=sees_all),
            filename="journal",
            fmt=fmt,
            title=_("Journal"),
        )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "orgs/audit_list.html",
        {"form": form, "page": page, "sees_all": sees_all, "query": query_without_page(request)},
    )


# --- Messages sent --------------------------------------------------------------------------


@membership_required("notifications:view")
def notification_list(request: HttpRequest) -> HttpResponse:
    """« Messages envoyés »: the e-mails sent for the organisation (operators: all)."""
    sees_all = membership_has_permission(request.membership, "notifications:view_all")
    form = NotificationFilterForm(
        request.GET or None,
        organisations=selectors.organisation_list(membership=request.membership)
        if sees_all
        else None,
    )
    filters = form.cleaned_data if form.is_valid() else {}
    found = selectors.notification_list(
        membership=request.membership,
        template=filters.get("template", ""),
        recipient=filters.get("recipient", ""),
        status=filters.get("status", ""),
        organisation_id=filters.get("organisation"),
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    )
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=found,
            columns=notification_columns(with_organisation=sees_all),
            filename="messages-envoyes",
            fmt=fmt,
            title=_("Messages envoyés"),
        )
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "orgs/notification_list.html",
        {
            "form": form,
            "page": page,
            "sees_all": sees_all,
            "query": query_without_page(request),
            "kinds": EMAIL_KINDS,
        },
    )


@membership_required("notifications:view")
def notification_detail(request: HttpRequest, pk: int) -> HttpResponse:
    notification = selectors.notification_get(membership=request.membership, pk=pk)
    return render(
        request,
        "orgs/notification_detail.html",
        {
            "notification": notification,
            "kind": EMAIL_KINDS.get(notification.template, notification.template),
            "sees_all": membership_has_permission(request.membership, "notifications:view_all"),
        },
    )
