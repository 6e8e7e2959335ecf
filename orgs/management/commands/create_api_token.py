from django.core.management.base import BaseCommand, CommandError

from aptic.errors import DomainError
from orgs.audit import Actor
from orgs.models import Membership
from orgs.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a member of an organisation and print its key (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="the member's e-mail address")
        parser.add_argument("--org", required=True, help="the organisation's slug")
        parser.add_argument("--name", default="Jeton en ligne de commande", help="a label")

    def handle(self, *args, email, org, name, **options):
        membership = (
            Membership.objects.active()
            .select_related("organisation", "user")
            .filter(user__email__iexact=email.strip(), organisation__slug=org.strip())
            .first()
        )
        if membership is None:
            raise CommandError(f"No active member {email!r} in organisation {org!r}.")
        try:
            _token, key = api_token_create(actor=Actor.system(), membership=membership, name=name)
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(key)
