"""`make serve`: the production stack on this machine.

gunicorn (gunicorn.conf.py) with DEBUG off and WhiteNoise serving the collected,
compressed, hashed static files, against the stand-in PollyBot API. Only the
HTTPS switches are off, since there is no TLS proxy in front locally. Ctrl-C
stops everything.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.app import SandboxApp  # noqa: E402
from sandbox.data import DEMO_API_KEY  # noqa: E402
from sandbox.server import serve  # noqa: E402

PORT = int(os.environ.get("PORT", "8000"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8765"))


def main() -> int:
    sandbox = serve(SandboxApp(api_key=DEMO_API_KEY), port=SANDBOX_PORT)
    password = secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # No TLS proxy on a laptop: the HTTPS switches and HSTS are off here only.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
        "POLLYBOT_BASE_URL": sandbox.base_url,
        "POLLYBOT_API_KEY": DEMO_API_KEY,
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "DJANGO_SUPERUSER_PASSWORD": password,
    }
    for command in (
        ["migrate", "--noinput", "-v0"],
        ["collectstatic", "--noinput", "-v0"],
        ["shell", "-c", _DEMO_USER],
    ):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)  # noqa: S603
    print(f"\n  Demo login: demo / {password}")
    print(f"  The seed lead: http://127.0.0.1:{PORT}/leads/lead_1234567890abcdef/\n")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(  # noqa: S603
        [str(gunicorn), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env
    )
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait(30)
    finally:
        sandbox.stop()


_DEMO_USER = """
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username="demo")
user.is_staff = user.is_superuser = True
user.set_password(os.environ["DJANGO_SUPERUSER_PASSWORD"])
user.save()
"""

if __name__ == "__main__":
    raise SystemExit(main())
