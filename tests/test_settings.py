"""The settings module, loaded fresh in a subprocess with a controlled environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({name: getattr(settings, name) for name in "
    "['DEBUG', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
    "'ALLOWED_HOSTS', 'TIME_ZONE', 'POLLYBOT_BASE_URL']}))"
)
NAMES = [
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "CACHE_URL",
    "TIME_ZONE",
    "POLLYBOT_BASE_URL",
    "POLLYBOT_API_KEY",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "POLLYBOT_ALLOW_HTTP_LOCALHOST",
    "SECRET_KEY_FALLBACKS",
]


# Set by this test process itself (tests/browser/conftest.py), never by a deployment.
TEST_ONLY = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES and k not in TEST_ONLY}
    clean.update(env, DJANGO_SETTINGS_MODULE="leadsite.settings")
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(autouse=True)
def no_dotenv():
    if (ROOT / ".env").exists():
        pytest.skip("a local .env would leak into these checks")


def test_missing_secret_key_with_debug_off_stops_start_up_naming_the_variable():
    result = load_settings(DEBUG="false")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY environment variable is required" in result.stderr


def test_https_switches_default_to_on_when_debug_is_off():
    result = load_settings(DEBUG="false", SECRET_KEY="x" * 50)
    loaded = json.loads(result.stdout)
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["ALLOWED_HOSTS"] == []


def test_debug_on_runs_without_a_secret_and_without_https():
    result = load_settings(DEBUG="true")
    loaded = json.loads(result.stdout)
    assert loaded["DEBUG"] is True
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is False
    assert "localhost" in loaded["ALLOWED_HOSTS"]


def test_every_variable_is_read_from_the_environment():
    result = load_settings(
        DEBUG="false",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="leads.example.com,leads2.example.com",
        TIME_ZONE="Asia/Tokyo",
        POLLYBOT_BASE_URL="https://api.example.com",
        SECURE_SSL_REDIRECT="false",
    )
    loaded = json.loads(result.stdout)
    assert loaded["ALLOWED_HOSTS"] == ["leads.example.com", "leads2.example.com"]
    assert loaded["TIME_ZONE"] == "Asia/Tokyo"
    assert loaded["POLLYBOT_BASE_URL"] == "https://api.example.com"
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is True


def test_env_example_documents_every_variable():
    documented = (ROOT / ".env.example").read_text()
    for name in NAMES:
        assert f"\n{name}=" in documented, name


def test_check_deploy_is_clean_with_the_readme_production_settings(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in NAMES and k not in TEST_ONLY}
    clean.update(
        DJANGO_SETTINGS_MODULE="leadsite.settings",
        DEBUG="false",
        SECRET_KEY="x7Qp-" + "k3Vz9Lm2Rt8Wy4Hs6Jd1Nc5Bf0Gg7Aa" * 2,
        ALLOWED_HOSTS="leads.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_secret_key_fallbacks_are_read_from_the_environment():
    probe = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps(settings.SECRET_KEY_FALLBACKS))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in NAMES and k not in TEST_ONLY}
    clean.update(
        DJANGO_SETTINGS_MODULE="leadsite.settings",
        DEBUG="false",
        SECRET_KEY="n" * 50,
        SECRET_KEY_FALLBACKS="old-one,older-one",
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout) == ["old-one", "older-one"]
