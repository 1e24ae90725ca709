"""`make run`'s command, run for real: sandbox + site + demo login, and Ctrl-C stops both."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "sk-workspace_" + "d" * 51


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def demo(tmp_path):
    site_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEBUG": "true",
        "SECRET_KEY": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "POLLYBOT_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "POLLYBOT_API_KEY": DEMO_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "demo", "--port", str(site_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C" in line:
                break
        while not is_listening(site_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process, "".join(output), site_port, sandbox_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_demo_serves_the_seed_lead_and_stops_on_ctrl_c(demo):
    process, output, site_port, sandbox_port = demo
    login = re.search(r"Demo login:\s+(\S+) / (\S+)", output)
    assert login, output
    seed_url = f"http://127.0.0.1:{site_port}/leads/lead_1234567890abcdef/"
    assert seed_url in output
    assert DEMO_KEY not in output

    browser = requests.Session()
    page = browser.get(seed_url, timeout=10)
    assert "/accounts/login/" in page.url  # the deep link asks for a login first
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    answer = browser.post(
        page.url,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": login.group(1),
            "password": login.group(2),
            "next": "/leads/lead_1234567890abcdef/",
        },
        headers={"Referer": page.url},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.url == seed_url
    assert "John Doe" in answer.text

    process.send_signal(signal.SIGINT)
    assert process.wait(15) == 0
    assert not is_listening(site_port)
    assert not is_listening(sandbox_port)
