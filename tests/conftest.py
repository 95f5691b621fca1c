"""Shared fixtures: loopback HTTP servers, an isolated data cache, no internet."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MIRROR = REPO.parent / "shared" / "mirror"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def serve():
    """Serve a folder on 127.0.0.1; returns a function folder -> base URL. Servers stop after the test."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    """Every test gets its own empty cache, and a mirror URL where nothing listens.

    A fetch that is not pointed at a test server therefore fails at once on the
    loopback interface instead of reaching the internet.
    """
    monkeypatch.setenv("ATOMTOOLS_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATOMTOOLS_DATA_URL", f"http://127.0.0.1:{_free_port()}/")
    monkeypatch.delenv("ATOMTOOLS_MANIFEST", raising=False)
    yield


@pytest.fixture
def mirror(serve):
    """Base URL of ../shared/mirror served on loopback; skips, saying why, where it is absent."""
    if not SHARED_MIRROR.is_dir():
        pytest.skip(f"the shared data mirror is absent ({SHARED_MIRROR}); the real-file download tests need it")
    return serve(SHARED_MIRROR)
