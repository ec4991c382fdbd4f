"""Prefect's settings for formscan's commands, set before Prefect is imported (it reads them then).

Each is a default: a value already in the environment wins (e.g. ``PREFECT_API_URL`` of a
real server, or a ``PREFECT_HOME`` of one's own).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DATA_DIR = Path("data")  # the project's data folder, as the default queue sqlite:///data/formscan.db


def prefect_defaults(data_dir: Path = DATA_DIR) -> dict[str, str]:
    home = (data_dir / "prefect").resolve()
    return {
        # Prefect's database (local mode), profiles and persisted task results ($PREFECT_HOME/storage)
        # live with the queue, not in ~/.prefect.
        "PREFECT_HOME": str(home),
        # The first start of the local server took ~18 s on a loaded 2-core machine; Prefect waits 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # The command prints its own progress and summary; Prefect's INFO lines still reach its API (the UI).
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
        "OMP_THREAD_LIMIT": "1",  # Tesseract's OpenMP threads only compete with the page threads
    }


def configure_prefect(data_dir: Path = DATA_DIR) -> None:
    for name, value in prefect_defaults(data_dir).items():
        os.environ.setdefault(name, value)
    # Prefect makes its home without parents; its local server cannot start without it.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


def stop_local_server_with_this_process() -> None:
    """Without ``PREFECT_API_URL``, start Prefect's local server now and have a watchdog stop it when
    this process is gone: Prefect stops it at exit, but a process killed with SIGKILL would leave it
    running. Call after ``configure_prefect``."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    server = SubprocessASGIServer()  # the instance Prefect's client uses when it needs the local server
    server.start()
    subprocess.Popen(
        ["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                     f"kill {server.server_process.pid} 2>/dev/null"],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
