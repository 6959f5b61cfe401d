"""An anonymous client on the network against the hub API (issue 13, F7).

The API runs in a child process (its own file descriptors, as in production);
this process opens connections that never send a request, from many loopback
addresses (127.0.x.y are all this machine) and from one abusive address, up to
20,000 or what the descriptor limit allows. Before the connection gate, ~20,000
idle connections made ``/health`` time out for everyone and the API's log grew
276 MB in a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.hostile

CHILD = r"""
import asyncio, json, sys
from pathlib import Path
from relais.api.app import create_api
from relais.api.auth import hash_token, static_authenticator
from relais.api.limits import ServerLimits
from relais.api.server import serve_api
from relais.blobs.filesystem import FilesystemBlobStore
from relais.logs import configure_logging

port, data_dir, limits = int(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
configure_logging("json", "INFO")

async def main():
    authenticate = static_authenticator({hash_token("hostile-test-token"): "213300010",
                                         hash_token("other-member-token"): "200054807"})
    app = create_api(FilesystemBlobStore(data_dir), authenticate, max_upload_bytes=1024)
    started = asyncio.Event()
    server = asyncio.create_task(serve_api(app, "127.0.0.1", port, started=started,
                                           limits=ServerLimits(**limits)))
    await started.wait()
    print("ready", flush=True)
    await server

asyncio.run(main())
"""

HEALTH_DEADLINE_S = 2.0
SERVER_FD_LIMIT = 4096
"""The API's descriptor limit here (a common ``LimitNOFILE``): 20,000 connections exceed it."""


def _server_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FD_LIMIT, hard))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def api_process(tmp_path: Path, **limits: float) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(port), str(tmp_path / "blobs"), json.dumps(limits)],
            stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=_server_fd_limit,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", log_path.read_text()[-2000:]
            yield port, child
        finally:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _idle_connection(port: int, source: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((source, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def _health(port: int) -> float:
    started = time.monotonic()
    response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=HEALTH_DEADLINE_S * 2)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    return time.monotonic() - started


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_twenty_thousand_idle_connections_leave_health_answering(tmp_path: Path) -> None:
    limit = _raise_fd_limit()
    wanted = min(20_000, limit - 300)
    held: list[socket.socket] = []
    with api_process(tmp_path, max_per_client=50, header_timeout=60) as (port, child):
        baseline = _health(port)
        started = time.monotonic()
        try:
            # one abusive address, then the rest spread over many addresses
            for index in range(wanted):
                source = "127.0.0.2" if index < 2_000 else (
                    f"127.1.{(index // 40) // 250}.{(index // 40) % 250 + 1}")
                sock = _idle_connection(port, source)
                if sock is not None:
                    held.append(sock)
                if index % 2_000 == 1_999:
                    assert _health(port) < HEALTH_DEADLINE_S, f"after {index + 1} connections"
            opened = time.monotonic() - started
            latencies = [_health(port) for _ in range(20)]
            fds = _open_fds(child.pid)
        finally:
            for sock in held:
                sock.close()
        print(json.dumps({"connections_opened": len(held), "wanted": wanted,
                          "seconds_to_open": round(opened, 1),
                          "health_baseline_s": round(baseline, 4),
                          "health_max_s": round(max(latencies), 4), "server_fds": fds}))
        assert len(held) >= wanted * 0.95  # the connections were made (then refused or evicted)
        assert max(latencies) < HEALTH_DEADLINE_S
        assert fds < SERVER_FD_LIMIT  # descriptors stay bounded, below the limit
    log_size = (tmp_path / "api.log").stat().st_size
    assert log_size < 200_000, f"the API logged {log_size} bytes"


def test_a_connection_that_sends_no_request_head_is_closed(tmp_path: Path) -> None:
    with api_process(tmp_path, header_timeout=1.0) as (port, _):
        silent = _idle_connection(port, "127.0.0.3")
        slowloris = _idle_connection(port, "127.0.0.3")
        assert silent is not None and slowloris is not None
        slowloris.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        for sock in (silent, slowloris):
            sock.settimeout(5)
            assert sock.recv(1024) == b""  # closed by the server
            sock.close()
        assert time.monotonic() - started < 4
        assert _health(port) < HEALTH_DEADLINE_S


def test_one_client_cannot_take_every_connection(tmp_path: Path) -> None:
    with api_process(tmp_path, max_per_client=10, header_timeout=60) as (port, _):
        mine = [_idle_connection(port, "127.0.0.4") for _ in range(10)]
        assert all(sock is not None for sock in mine)
        extra = _idle_connection(port, "127.0.0.4")
        assert extra is not None
        extra.settimeout(5)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"too_many_connections" in answer
        extra.close()
        assert _health(port) < HEALTH_DEADLINE_S  # another address is still served
        for sock in mine:
            assert sock is not None
            sock.close()


@pytest.mark.parametrize("form", ["multipart", "urlencoded"])
def test_curl_forms_are_refused_over_the_wire(tmp_path: Path, form: str) -> None:
    with api_process(tmp_path) as (port, _):
        url = f"http://127.0.0.1:{port}/v1/blobs"
        headers = {"Authorization": "Bearer hostile-test-token", "X-Relais-Filename": "a.pdf"}
        if form == "multipart":
            response = httpx.post(url, files={"file": ("a.pdf", b"%PDF-1.4")}, headers=headers)
        else:
            response = httpx.post(url, data={"file": "%PDF-1.4"}, headers=headers)
        assert response.status_code == 415
        assert response.json()["error"] == "form_upload"
        assert "raw bytes" in response.json()["message"]


def test_member_b_cannot_download_member_a_s_blob(tmp_path: Path) -> None:
    """F4 over the wire: knowing the digest is not enough."""
    with api_process(tmp_path) as (port, _):
        base = f"http://127.0.0.1:{port}/v1/blobs"
        a = {"Authorization": "Bearer hostile-test-token"}
        b = {"Authorization": "Bearer other-member-token"}
        letter = b"%PDF-1.4 a prefecture letter for member A"
        stored = httpx.post(base, content=letter, headers={
            **a, "X-Relais-Filename": "lettre.pdf", "Content-Type": "application/pdf"})
        assert stored.status_code == 201
        digest = stored.json()["sha256"]
        assert httpx.get(f"{base}/{digest}", headers=a).content == letter
        refused = httpx.get(f"{base}/{digest}", headers=b)
        assert (refused.status_code, refused.json()["error"]) == (403, "blob_not_owned")
        assert letter not in refused.content
        assert httpx.head(f"{base}/{digest}", headers=b).status_code == 403
