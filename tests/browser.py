"""A real headless Chromium (Debian's package) driven by Playwright, against a live server."""
import os
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def ensure_chromium():
    """Install Debian's chromium and CJK fonts when missing (playwright install cannot download here)."""
    need = []
    if not os.path.exists(CHROMIUM):
        need.append("chromium")
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True) if shutil.which("fc-list") else None
    if fonts is None or not fonts.stdout.strip():
        need.append("fonts-noto-cjk")
    if not need:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env, capture_output=True)
    done = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *need], env=env, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(CHROMIUM):
        pytest.fail(f"could not install {' '.join(need)} with apt-get: {done.stderr[-2000:]}")


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)
