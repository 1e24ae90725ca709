"""Settings for leadsite: one module, driven by the environment (django-environ).

Every variable is documented in `.env.example`. A `.env` file beside `manage.py`
is read when present; real environment variables win over it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.is_file():
    environ.Env.read_env(_env_file)

DEBUG: bool = env.bool("DEBUG", default=False)

# With DEBUG off a real secret is required: fail loudly, naming the variable.
SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "The SECRET_KEY environment variable is required when DEBUG is off "
            "(set it in the environment or in .env; see .env.example)."
        )
    SECRET_KEY = "django-insecure-local-development-only-never-use-in-production"  # noqa: S105

# Previous secrets, still accepted for signatures and for reading the workspace
# key saved in the admin, while SECRET_KEY is rotated (comma-separated).
SECRET_KEY_FALLBACKS: list[str] = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS: list[str] = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "leads",
    "axes",  # last, as django-axes asks
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "leads.middleware.RequestIDMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "leads.middleware.SessionLifetimeMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "leadsite.urls"

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
                "leads.context_processors.site",
            ],
        },
    },
]

WSGI_APPLICATION = "leadsite.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Django's Redis backend, reusing its Redis client between calls (leads/cache.py).
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "leads.cache.RedisCache"


def _rendered(location: str, entries: int) -> dict[str, Any]:
    """A cache of rendered HTML, in each process's own memory, bounded by count.

    None with DEBUG, so template edits show at once.
    """
    if DEBUG:
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    return {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": location,
        "TIMEOUT": 3600,
        "OPTIONS": {"MAX_ENTRIES": entries},
    }


# The lead page's rendered cards ({% cache %} in templates/leads/detail.html):
# keyed by the lead's content, so nothing in them needs sharing between
# instances, and a hit costs no network round trip. 600 cards of 1-3 KB for the
# demo data's leads.
CACHES["fragments"] = _rendered("leadsite-fragments", 600)
# Whole lead pages as a viewer last saw them (leads.views._lead_page), apart
# from the cards, so pages (one per viewer and lead) never push out cards every
# viewer shares. 300 pages of 8-15 KB for the demo data's leads: about 4.5 MB.
CACHES["pages"] = _rendered("leadsite-pages", 300)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Sessions -----------------------------------------------------------------
# Idle timeout: the session ends after this many seconds without a request
# (renewed while active, leads.middleware). Absolute lifetime: it ends this
# long after login however active it was. Defaults fit a working day.
SESSION_COOKIE_AGE: int = env.int("SESSION_IDLE_TIMEOUT", default=4 * 60 * 60)
SESSION_MAX_AGE: int = env.int("SESSION_MAX_AGE", default=12 * 60 * 60)
# Sessions live in the database (logout and deactivation end them on the
# server), read through the cache.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Login throttling (django-axes) ---------------------------------------------
# 10 failures for one username within 15 minutes lock that username for 15
# minutes, whether or not the user exists. Never by IP address alone: behind
# the TLS proxy, or from a shared office network, many people share one
# address, and an outsider must not be able to lock them all out. The
# (username, IP) pair is tracked too (axes' check asks for the IP); it can
# never reach the limit before the username alone does.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, with permissions kept in the shared cache (leads/auth.py).
    "leads.auth.CachedPermissionsBackend",
]
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", ["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

LANGUAGE_CODE = "en-gb"
TIME_ZONE: str = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves static files itself, compressed, under hashed names (cached
# forever by browsers); run `manage.py collectstatic` before serving.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- The PollyBot workspace -------------------------------------------------
# The fallback connection when no workspace has been saved in the admin.
POLLYBOT_BASE_URL: str = env.str("POLLYBOT_BASE_URL", default="")
POLLYBOT_API_KEY: str = env.str("POLLYBOT_API_KEY", default="")
# Caching of leads (leads/services.py, leads/freshness.py): a copy is fresh for
# a tenth of the time the lead had gone unchanged (its updatedAt) when fetched,
# at least POLLYBOT_CACHE_TTL seconds and at most POLLYBOT_CACHE_MAX_TTL (0 in
# POLLYBOT_CACHE_TTL: never fresh); then kept as a stale copy (shown when
# PollyBot is down) up to POLLYBOT_STALE_TTL.
POLLYBOT_CACHE_TTL: int = env.int("POLLYBOT_CACHE_TTL", default=300)
POLLYBOT_CACHE_MAX_TTL: int = env.int("POLLYBOT_CACHE_MAX_TTL", default=3600)
POLLYBOT_STALE_TTL: int = env.int("POLLYBOT_STALE_TTL", default=86400)
# Lets an admin save an http:// base URL to localhost/127.0.0.1 with DEBUG off
# (the sandbox in tests and demos). Never needed in production.
POLLYBOT_ALLOW_HTTP_LOCALHOST: bool = env.bool("POLLYBOT_ALLOW_HTTP_LOCALHOST", default=False)

# --- HTTPS -------------------------------------------------------------------
# Each switch defaults to on in production (DEBUG off) and off on a laptop.
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE: bool = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE: bool = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# HSTS: one year, subdomains included; configurable. `preload` only allows a
# submission to the browsers' preload list, it does not make one.
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Only behind a proxy that overwrites X-Forwarded-Proto (see the README).
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp 4): everything from this site, nothing
# inline, no plugins, no framing, forms post only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# --- Logging -----------------------------------------------------------------
# One line per event with the request ID; the filter redacts anything shaped
# like a workspace key, as a last line of defence.
# Error pages and reports (DEBUG's technical 500 page too) never show the key.
DEFAULT_EXCEPTION_REPORTER_FILTER = "leads.reporting.RedactingExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "leads.log.RequestContextFilter"}},
    "formatters": {
        "plain": {
            "format": (
                "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s "
                "cache=%(cache)s %(message)s"
            )
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "leads": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Django's own lines through the same filter (request ID, redaction),
        # instead of its default handler.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Timeouts and retries of PollyBot calls: the client's named constants
# (leads/pollybot.py) unless overridden here, e.g. by tests.
# POLLYBOT_CONNECT_TIMEOUT, POLLYBOT_READ_TIMEOUT, POLLYBOT_CALL_DEADLINE,
# POLLYBOT_MAX_RETRIES, POLLYBOT_BACKOFF_FACTOR
