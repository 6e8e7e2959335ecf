from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from insight.services import insight_refresh
from orgs.demo import (
    DEMO_TOTP_KEY_BASE32,
    DEMO_TOTP_KEY_HEX,
    seed_accreditations,
    seed_organisations,
)
from redemption.demo import seed_settlement
from vouchers.demo import seed_vouchers


class Command(BaseCommand):
    help = (
        "Load the demo data (idempotent) and print every demo login. Development only: the "
        "passwords and the operators' TOTP key are published in the README."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Run although DEBUG is off (a throw-away demo stack, never a production one).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_without_debug"]:
            # Operator admins with a published password and TOTP key would be a way in.
            raise CommandError(
                "seed_demo creates accounts whose password and authenticator key are published "
                "in the README, so it only runs with DEBUG on. On a throw-away demo stack (never "
                "a production one), pass --allow-without-debug."
            )
        logins = seed_organisations()
        for line in [*seed_vouchers(), *seed_accreditations(), *seed_settlement()]:
            self.stdout.write(f"  {line}")
        # The dashboards read tallies: rebuild them from the (backdated) demo rows.
        insight_refresh()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (e-mail / password):"))
        width = max(len(email) for email, *_ in logins)
        for email, password, organisation, role in logins:
            self.stdout.write(f"  {email:<{width}}  {password}  {organisation} ({role})")
        code_command = (
            ".venv/bin/python -c 'from django_otp.oath import totp; "
            f'print("%06d" % totp(bytes.fromhex("{DEMO_TOTP_KEY_HEX}")))\''
        )
        self.stdout.write(
            "Operators (Médias-Cité) then type a code from an authenticator app set up with the "
            f"key {DEMO_TOTP_KEY_BASE32}, or the code printed by:\n  {code_command}"
        )
        self.stdout.write("Open http://127.0.0.1:8000/ and sign in with any of them.")
