"""Start JupyterLab as `make lab` starts it, and find a Chromium to look at it with.

The server runs on loopback with a token, ``COURSE_FAST=1`` and this checkout first on
``PYTHONPATH`` (as the notebook runner sets it). Its settings, workspaces and runtime files live in
a temporary folder, with autosave off and checkpoints kept there too, so driving it never writes
into ``notebooks/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOW_TO_ENABLE = (
    "no Chromium found for the browser tests: install one with "
    "`.venv/bin/python -m playwright install chromium` (or your system's chromium package), "
    "or point COURSE_CHROMIUM at a Chromium/Chrome binary"
)
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Lab settings for a test run: no autosave (the notebooks stay without outputs), every cell kept in
# the DOM (JupyterLab otherwise may skip rendering cells far off screen), no news pop-up.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


NO_PLAYWRIGHT = (
    "Playwright is not installed, so the browser tests cannot run: `make install-test` "
    "(or `pip install playwright`)"
)


def playwright_installed() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


def find_chromium() -> str | None:
    """A Chromium to drive: ``COURSE_CHROMIUM``, a system Chromium/Chrome, or Playwright's own.

    Returns the executable's path, or None when there is none (or Playwright is not installed).
    """
    if not playwright_installed():
        return None
    explicit = os.environ.get("COURSE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    return _playwright_chromium()


def _playwright_chromium() -> str | None:
    """The browser `python -m playwright install chromium` downloads, if it has been."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:  # noqa: BLE001 - a broken driver means "no browser here", said clearly
        return None
    return path if path and Path(path).exists() else None


def chromium_args() -> list[str]:
    # Chromium's sandbox refuses to start as root (containers, CI).
    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`make lab` on a free loopback port with a token; ``url(path)`` builds authenticated URLs."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "lab.log"

    def url(self, path: str, **query: str) -> str:
        q = "&".join([f"token={self.token}"] + [f"{k}={v}" for k, v in query.items()])
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?{q}"

    def _write_settings(self) -> Path:
        settings = self.workdir / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        return settings

    def _write_server_config(self) -> Path:
        """Checkpoints in the temporary folder too: opening a notebook would otherwise create
        ``notebooks/.ipynb_checkpoints`` in the checkout."""
        config = self.workdir / "config"
        config.mkdir(parents=True, exist_ok=True)
        server = {"FileCheckpoints": {"checkpoint_dir": str(self.workdir / "checkpoints")}}
        (config / "jupyter_server_config.json").write_text(json.dumps(server), encoding="utf-8")
        return config

    def start(self, timeout: float = 180) -> LabServer:
        env = dict(os.environ)
        env.update(
            COURSE_FAST="1",
            PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]),
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self._write_server_config()),
            JUPYTERLAB_SETTINGS_DIR=str(self._write_settings()),
            JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "workspaces"),
        )
        env.update(self.extra_env)
        lab_args = (
            f"--no-browser --ServerApp.port={self.port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={self.token}"
        )
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"VENV={sys.prefix}", f"LAB_ARGS={lab_args}"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not start: {self.log.read_text()[-2000:]}")

    def api(self, method: str, path: str):
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every notebook session (and its kernel) the browser started."""
        for session in self.api("GET", "api/sessions") or []:
            self.api("DELETE", f"api/sessions/{session['id']}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
