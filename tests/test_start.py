"""Starting the product as a newcomer would: migrations, python app.py, the flask CLI."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp_path, **extra):
    env = {**os.environ, "FORMFLOW_INSTANCE_PATH": str(tmp_path / "instance"), **extra}
    env.pop("FORMFLOW_DATABASE_URL", None)
    env.pop("FORMFLOW_QUEUE_URL", None)
    return env


def test_flask_db_upgrade_creates_every_table(tmp_path):
    env = env_for(tmp_path)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "check"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr  # models and migrations agree
    assert (tmp_path / "instance" / "formflow.db").exists()


def test_python_app_py_starts_with_demo_data_and_a_consumer(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Running on" in line:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in text
        assert re.search(r"sales1\s+/ demo1234", text)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10).read().decode()
        assert "登录" in body
        import sqlite3
        db = sqlite3.connect(tmp_path / "instance" / "formflow.db")
        assert db.execute("select count(*) from records").fetchone()[0] > 100
        deadline = time.monotonic() + 30
        beats = 0
        while time.monotonic() < deadline and not beats:
            beats = db.execute("select count(*) from queue_heartbeats").fetchone()[0]
            time.sleep(0.5)
        assert beats >= 1  # the in-process consumer ran its periodic task
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_token_create_prints_a_token_that_works(tmp_path):
    env = env_for(tmp_path)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "blueprint", "load", "tests/blueprints/helpdesk"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "token", "create", "admin"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(out.stderr)
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("ff_")
    import sqlite3
    db = sqlite3.connect(tmp_path / "instance" / "formflow.db")
    stored = db.execute("select token_hash from api_tokens").fetchone()[0]
    assert token not in stored and len(stored) == 64
