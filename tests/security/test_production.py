"""Production settings: cookies only over HTTPS and out of scripts' reach, HSTS, a strict CSP."""

from __future__ import annotations

import json

from tests.test_settings import _production_env, _run

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS",
    "AXES_FAILURE_LIMIT", "CONTENT_SECURITY_POLICY", "MIDDLEWARE",
]}, default=str))
"""


def test_the_production_shape_hardens_cookies_transport_and_pages():
    result = _run(["-c", PRINT_SETTINGS], _production_env())
    assert result.returncode == 0, result.stderr
    production = json.loads(result.stdout.strip().splitlines()[-1])

    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_HTTPONLY"] is True
    assert production["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 60 * 60 * 24 * 365
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is True
    assert production["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert production["X_FRAME_OPTIONS"] == "DENY"
    assert production["AXES_FAILURE_LIMIT"] == 5
    directives = production["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"]
    middleware = production["MIDDLEWARE"]
    for name in (
        "csp.middleware.CSPMiddleware",
        "django_otp.middleware.OTPMiddleware",
        "security.middleware.TwoFactorMiddleware",
        "axes.middleware.AxesMiddleware",
    ):
        assert name in middleware
    # The second-factor check needs the verified device that OTPMiddleware attaches.
    assert middleware.index("django_otp.middleware.OTPMiddleware") < middleware.index(
        "security.middleware.TwoFactorMiddleware"
    )
