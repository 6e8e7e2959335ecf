from django.core.management.base import BaseCommand

from orgs.demo import (
    DEMO_TOTP_KEY_BASE32,
    DEMO_TOTP_KEY_HEX,
    seed_accreditations,
    seed_organisations,
)
from redemption.demo import seed_settlement
from vouchers.demo import seed_vouchers


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print every demo login."

    def handle(self, *args, **options):
        logins = seed_organisations()
        for line in [*seed_vouchers(), *seed_accreditations(), *seed_settlement()]:
            self.stdout.write(f"  {line}")
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
