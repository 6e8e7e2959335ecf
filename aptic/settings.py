"""Aptic settings: one module, driven by environment variables (django-environ).

Development (``make run``) sets ``DEBUG=1`` and gets SQLite, in-process tasks and a local-memory
cache. Production sets ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

# The development key is public; it is accepted only with DEBUG on.
DEVELOPMENT_SECRET_KEY = "django-insecure-aptic-development-only-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a private value when DEBUG is off "
        "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

# Key of the beneficiaries' pseudonymous dedup_key. Changing it makes earlier hand-overs
# unrecognisable for the per-person limit, so it is kept apart from SECRET_KEY rotation.
DEDUP_SECRET = env.str("DEDUP_SECRET", default="") or f"dedup:{SECRET_KEY}"

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public base URL, printed in QR codes and e-mails.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "aptic",
    "orgs",
    "vouchers",
    "redemption",
    "insight",
    "directory",
    "security",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orgs.middleware.CurrentMembershipMiddleware",
    "security.middleware.TwoFactorMiddleware",
    "aptic.middleware.BusyDatabaseMiddleware",
    # Last, so it sees the lock-out flag the authentication backend set on the request.
    "axes.middleware.AxesMiddleware",
]
# API requests with ``Authorization: Token …`` (aptic.handlers): the token decides who acts, the
# answer is JSON; none of the session, CSRF, second-factor, messages, htmx, CSP or sign-in
# lock-out middlewares has anything to do for them. In MIDDLEWARE's order.
TOKEN_API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aptic.middleware.BusyDatabaseMiddleware",
]

ROOT_URLCONF = env.str("ROOT_URLCONF", default="aptic.urls")
WSGI_APPLICATION = "aptic.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "orgs.context_processors.membership",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Off by default: the check is one more round trip on every request. A connection broken
    # by a database restart fails one request (answered 503 "busy", see aptic.middleware) and
    # is then discarded.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    # A lock that cannot be taken quickly answers "busy" instead of hanging a counter.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={env.int('DB_LOCK_TIMEOUT_MS', default=5000)}"
    )
    # The few statements on every API request (aptic.rows.prepared_cursor) are prepared once per
    # connection, from their second run: planning the cheques' join cost more than running it.
    # Django's own cursors bind on the client and are never prepared. Off (DB_PREPARED_STATEMENTS
    # =0) behind a pooler in transaction mode, which cannot keep prepared statements.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 1
else:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "orgs.User"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as broker and result store; without Redis, tasks run in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Europe/Paris"
CELERY_BEAT_SCHEDULE: dict = {
    "expire-cheques-daily": {
        "task": "vouchers.tasks.expire_cheques",
        "schedule": crontab(hour=0, minute=15),
    },
    "settlement-monthly": {
        "task": "redemption.tasks.create_monthly_batch",
        "schedule": crontab(
            day_of_month=env.int("SETTLEMENT_DAY_OF_MONTH", default=1), hour=2, minute=0
        ),
    },
    "warn-expiring-booklets-daily": {
        "task": "vouchers.tasks.warn_expiring_booklets",
        "schedule": crontab(hour=8, minute=0),
    },
    "close-ended-programmes-daily": {
        "task": "vouchers.tasks.close_ended_programmes",
        "schedule": crontab(hour=0, minute=30),
    },
    "expire-accreditations-daily": {
        "task": "orgs.tasks.expire_accreditations",
        "schedule": crontab(hour=0, minute=20),
    },
    "refresh-insight": {
        "task": "insight.tasks.refresh_insight",
        "schedule": crontab(minute="*/10"),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: a locked-out username+IP pair is refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("Français")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private-media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Supporting documents: no URL, served only through permission-checked views.
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT), "base_url": None},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not env.bool("STATIC_MANIFEST", default=not DEBUG)

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Aptic <ne-pas-repondre@aptic.fr>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# How many reverse proxies in front of the server append to X-Forwarded-For (orgs.audit.client_ip):
# the client is that many hops from the right. 0: the header is ignored (anyone can write it) and
# the connection's address is the client. The compose stack, behind its one proxy, sets 1.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)

# Abuse limits at the counters (per minute) and the lock-out after repeated failures.
REDEEM_RATE_PER_MEMBERSHIP = env.int("REDEEM_RATE_PER_MEMBERSHIP", default=120)
REDEEM_RATE_PER_IP = env.int("REDEEM_RATE_PER_IP", default=240)
PUBLIC_CHEQUE_RATE_PER_IP = env.int("PUBLIC_CHEQUE_RATE_PER_IP", default=30)
PUBLIC_DIRECTORY_RATE_PER_IP = env.int("PUBLIC_DIRECTORY_RATE_PER_IP", default=60)
LOCKOUT_FAILURES = env.int("LOCKOUT_FAILURES", default=30)
LOCKOUT_WINDOW_MINUTES = env.int("LOCKOUT_WINDOW_MINUTES", default=10)
LOCKOUT_MINUTES = env.int("LOCKOUT_MINUTES", default=30)
REDEMPTION_CANCEL_HOURS = 24
# Test-only switch for the control test that shows the race the compare-and-set prevents.
REDEEM_UNSAFE_WITHOUT_GUARD = False

# Settlement: the operator's account debited by the SEPA credit transfers, and the schedule of
# the monthly batch (redemptions up to the end of the previous month).
SEPA_DEBTOR_NAME = env.str("SEPA_DEBTOR_NAME", default="MEDIAS-CITE")
SEPA_DEBTOR_IBAN = env.str("SEPA_DEBTOR_IBAN", default="FR7630004000031234567890143")
SEPA_DEBTOR_BIC = env.str("SEPA_DEBTOR_BIC", default="BNPAFRPP")
SETTLEMENT_DAY_OF_MONTH = env.int("SETTLEMENT_DAY_OF_MONTH", default=1)
SETTLEMENT_TEST_PAUSE_SECONDS = env.float("SETTLEMENT_TEST_PAUSE_SECONDS", default=0)  # test-only

# Dashboards: their monthly tallies are rebuilt every 10 minutes (beat), and when a dashboard
# finds them older than this.
INSIGHT_MAX_AGE_SECONDS = env.int("INSIGHT_MAX_AGE_SECONDS", default=900)

# Invitations to join an organisation stay valid this long.
INVITATION_VALIDITY_DAYS = env.int("INVITATION_VALIDITY_DAYS", default=7)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orgs.authentication.ApiTokenAuthentication",
        "security.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["orgs.api_permissions.HasMembership"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "aptic.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aptic API",
    "DESCRIPTION": (
        "Public API of the APTIC digital-inclusion cheque. Authenticate with "
        "`Authorization: Token <key>` or a browser session. Errors are "
        '`{"code": "<machine_code>", "detail": "<message>"}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "aptic.schema.document_error_responses",
    ],
}

# Log-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one e-mail
# address from one IP, that pair is refused for the cool-off, even with the right password.
# Staff see and lift lock-outs in the admin ("Access attempts"); a password reset lifts them.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The log-in form (and authenticate()) name the e-mail address "username".
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "security.lockout.request_ip"
AXES_LOCKOUT_CALLABLE = "security.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password"]

# Two-factor authentication (django-otp, TOTP): available to everyone, required for operators.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Aptic")
OTP_TOTP_THROTTLE_FACTOR = 1

# Content Security Policy: only this origin's scripts and styles, no inline script or style, no
# eval (htmx runs with allowEval off, see base.html), no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Production hardening: with DEBUG off, `manage.py check --deploy` reports nothing.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie (forms and htmx take the token from the page).
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # Lock-outs are warnings; each ordinary attempt would be an INFO line.
        "axes": {"level": "WARNING"},
    },
}
