"""Start the real BentoML service for HTTP tests and stop its whole process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def bentoml_server(
    env: Mapping[str, str], log_path: Path, *, ready_within: float = 120
) -> Iterator[str]:
    """``bentoml serve serving.service:TrialcastService`` on a free port, yielding its base URL
    once ``/readyz`` answers; its log goes to ``log_path`` (shown if it dies first)."""
    with bentoml_server_process(env, log_path, ready_within=ready_within) as (base, _proc):
        yield base


@contextlib.contextmanager
def bentoml_server_process(
    env: Mapping[str, str], log_path: Path, *, ready_within: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``bentoml_server``, yielding the base URL and the ``bentoml serve`` process."""
    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(bentoml), "serve", "serving.service:TrialcastService", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_within
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()[-3000:])
                try:
                    if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready in {ready_within:.0f} s")
                time.sleep(0.25)
            yield base, proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


class CookieClient:
    """A cookie-keeping client that, like a browser on localhost, sends ``Secure`` cookies
    over plain http (``requests.Session`` drops them there)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        r = requests.request(method, url, cookies=dict(self.cookies), **kwargs)
        for response in [*r.history, r]:
            self.cookies.update(dict(response.cookies))
        return r

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)
