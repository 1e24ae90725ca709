"""Screenshots of the seed lead's page for the README (`make screenshots`).

Runs `manage.py demo` (the same as `make run`) on free ports with a throwaway
database, logs in with the demo login in headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright) and saves a phone-sized and a
desktop-sized picture under docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SIZES = {"phone": (375, 812), "desktop": (1280, 800)}
SEED_PATH = "/leads/lead_1234567890abcdef/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    if not Path(CHROMIUM).exists():
        sys.stderr.write("Chromium is missing: apt-get install -y chromium\n")
        return 1
    site_port, sandbox_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "POLLYBOT_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "POLLYBOT_API_KEY": "sk-workspace_" + "s" * 51,
            "PYTHONUNBUFFERED": "1",
        }
        demo = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "demo", "--port", str(site_port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert demo.stdout is not None
            output = ""
            while "Press Ctrl-C" not in output:
                line = demo.stdout.readline()
                if not line:
                    sys.stderr.write("the demo did not start\n")
                    return 1
                output += line
            login = re.search(r"Demo login:\s+(\S+) / (\S+)", output)
            assert login is not None
            time.sleep(0.5)
            shoot(
                f"http://127.0.0.1:{site_port}",
                login.group(1),
                login.group(2),
                sandbox_url=env["POLLYBOT_BASE_URL"],
                api_key=env["POLLYBOT_API_KEY"],
            )
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(15)
    return 0


def shoot(base_url: str, username: str, password: str, *, sandbox_url: str, api_key: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for name, (width, height) in SIZES.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(base_url + SEED_PATH)
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url(base_url + SEED_PATH)
            page.screenshot(path=str(OUT / f"lead-{name}.png"), full_page=True)
            sys.stdout.write(f"saved docs/screenshots/lead-{name}.png\n")
            context.close()
        # The workspace admin page: save the sandbox as the workspace, test it.
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(base_url + "/admin/leads/workspace/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("main [type=submit]")
        page.fill("#id_name", "Demo workspace")
        page.fill("#id_base_url", sandbox_url)
        page.fill("#id_api_key", api_key)
        page.click("input[name=_continue]")
        page.click("text=Test connection")
        page.wait_for_selector(".messagelist")
        page.screenshot(path=str(OUT / "workspace-admin.png"), full_page=True)
        sys.stdout.write("saved docs/screenshots/workspace-admin.png\n")
        context.close()
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
