"""Scale-out without docker, for real: two Prefect workers share a batch and every page lands once.

    .venv/bin/python scripts/multiworker_check.py [--keep]

Starts, all on 127.0.0.1 and each stopped by its PID at the end:
  * PostgreSQL (scripts/postgres.sh) with two databases: `prefect` and `queue`;
  * `prefect server start` on PostgreSQL (PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...);
  * a process work pool, the ingest flow deployed on it from this folder (`formscan deploy`);
  * two `prefect worker start --pool P --limit 1` processes that share the queue database and
    image store (FORMSCAN_DATABASE_URL, FORMSCAN_STORE_DIR), as two machines would.
Then it submits the batch as two flow runs that overlap on one page (both workers get a run,
and both try the shared page at once), waits for them, and checks in PostgreSQL that every page
is in the queue exactly once. Prints one JSON line; exit status 0 when the check holds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANS = ROOT / "fixtures" / "scans"
BIN = Path(sys.executable).parent
# Two flow runs, one page in both: whichever worker stores it first wins, the other skips it.
RUNS = (["seed-1.pdf", "seed-3.pdf"], ["seed-2.pdf", "seed-3.pdf"])
POOL, DEPLOYMENT = "formscan-check", "formscan-ingest/ingest"


def _die_with_parent() -> None:
    """In the child: SIGTERM when this script dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group it leads (it and the flow runs it started), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(ready, what: str, timeout: float, *processes: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"{what}: a process it needs has exited")
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not ready after {timeout:g} s")


def healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


class Check:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[subprocess.Popen] = []
        self.postgres_dir = work / "postgres"
        self.postgres_pid: int | None = None

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.processes.append(process)
        return process

    def run(self) -> dict:
        started = time.monotonic()
        done = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(self.postgres_dir)],
                              capture_output=True, text=True, timeout=180, check=True)
        exported = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        self.postgres_pid = int(exported["FORMSCAN_POSTGRES_PID"])
        # pg_ctl detaches the server: if this script is killed, the watchdog still stops it.
        subprocess.Popen(["bash", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                                        f"kill -INT {self.postgres_pid} 2>/dev/null"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin_url = exported["FORMSCAN_POSTGRES_URL"]  # postgresql://postgres@127.0.0.1:PORT/postgres
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as connection:
            for database in ("prefect", "queue"):
                connection.execute(f"CREATE DATABASE {database}")
        server_root = admin_url.rsplit("/", 1)[0]
        queue_url = f"{server_root}/queue"

        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        base = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        base.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", OMP_THREAD_LIMIT="1")
        server = self.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", str(port)],
                            {**base, "PREFECT_HOME": str(self.work / "server-home"), "PREFECT_UI_ENABLED": "false",
                             "PREFECT_API_DATABASE_CONNECTION_URL":
                                 server_root.replace("postgresql://", "postgresql+asyncpg://") + "/prefect"})
        wait_until(lambda: healthy(api), "prefect server", 300, server)

        client_env = {**base, "PREFECT_API_URL": api, "PREFECT_HOME": str(self.work / "client-home")}
        subprocess.run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
                       env=client_env, cwd=self.work, capture_output=True, text=True, timeout=120, check=True)
        subprocess.run([str(BIN / "formscan"), "deploy", "--pool", POOL, "--name", "ingest", "--source", str(ROOT)],
                       env=client_env, cwd=self.work, capture_output=True, text=True, timeout=180, check=True)

        store = self.work / "store"  # shared, as a network folder would be between machines
        for n in (1, 2):
            self.start(f"worker-{n}", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name",
                                       f"worker-{n}", "--limit", "1", "--type", "process"],
                       {**base, "PREFECT_API_URL": api, "PREFECT_HOME": str(self.work / f"worker-{n}-home"),
                        "PREFECT_WORKER_QUERY_SECONDS": "1", "FORMSCAN_DATABASE_URL": queue_url,
                        "FORMSCAN_STORE_DIR": str(store)})

        os.environ.update(client_env)  # the Prefect client below talks to this server
        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment

        runs = [run_deployment(DEPLOYMENT, parameters={"paths": [str(SCANS / name) for name in names]}, timeout=0)
                for names in RUNS]
        with get_client(sync_client=True) as client:
            def finished() -> bool:
                return all(client.read_flow_run(run.id).state.is_final() for run in runs)

            wait_until(finished, "flow runs", 900, *self.processes)
            runs = [client.read_flow_run(run.id) for run in runs]
        states = [run.state.type.value for run in runs]

        # Both workers may try to claim a run; the one that got it says "Flow run 'NAME' submitted to infrastructure".
        workers_of_runs = {}
        for n in (1, 2):
            log = (self.work / f"worker-{n}.log").read_text(encoding="utf-8", errors="replace")
            for run in runs:
                if re.search(rf"Flow run '{re.escape(run.name)}' submitted to infrastructure", log):
                    workers_of_runs[run.name] = f"worker-{n}"

        import sqlalchemy

        engine = sqlalchemy.create_engine(queue_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text(
                "SELECT d.name, p.number, count(*) FROM pages p JOIN documents d ON d.id = p.document_id "
                "GROUP BY d.name, p.number ORDER BY d.name")).all()
        engine.dispose()
        landed = {f"{Path(name).name}:{number}": count for name, number, count in rows}
        expected = sorted({f"{name}:1" for names in RUNS for name in names})
        result = {
            "flow_runs": states,
            "workers": sorted(set(workers_of_runs.values())),
            "runs_by_worker": workers_of_runs,
            "pages": landed,
            "seconds": round(time.monotonic() - started, 1),
        }
        result["ok"] = (states == ["COMPLETED", "COMPLETED"] and result["workers"] == ["worker-1", "worker-2"]
                        and sorted(landed) == expected and set(landed.values()) == {1})
        return result

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        if self.postgres_pid:
            try:
                os.kill(self.postgres_pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(self.postgres_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases) for a look")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="formscan-multiworker-"))
    work.chmod(0o755)  # the PostgreSQL cluster runs as user postgres when we are root
    check = Check(work)
    try:
        result = check.run()
    except Exception as exc:  # noqa: BLE001 - reported as the check's outcome, with the logs' place
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "logs": str(work)}
        args.keep = True
    finally:
        check.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        result["work"] = str(work)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
