"""nbval runs the committed notebooks (``make test``): give their kernels the shared data mirror.

The notebooks fetch real files through ``atomtools.data`` (pooch). Tests never reach the
internet, so when ``../shared/mirror`` lies beside the repository it is served on the
loopback interface and ``ATOMTOOLS_DATA_URL`` points there (the kernels inherit it);
without the mirror the notebooks say which file they could not get and skip that part.
"""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
from pathlib import Path

MIRROR = Path(__file__).resolve().parent.parent.parent / "shared" / "mirror"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def pytest_configure(config):
    os.environ.setdefault("ATOMTOOLS_DATA_DIR", tempfile.mkdtemp(prefix="atomtools-nbval-cache-"))
    if not MIRROR.is_dir() or "ATOMTOOLS_DATA_URL" in os.environ:
        return
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(MIRROR)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["ATOMTOOLS_DATA_URL"] = f"http://127.0.0.1:{server.server_address[1]}/"
