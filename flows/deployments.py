"""Prefect deployments of the ingest flows: the served overnight inbox, and ingest on a work pool.

The queue's database URL is never a deployment parameter (the UI shows parameters): the
process that runs the flow takes it from ``$FORMSCAN_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.ingest import ingest_batch, ingest_inbox
from formscan.pool import ReadSettings

PROJECT_DIR = Path(__file__).resolve().parent.parent
INGEST_ENTRYPOINT = "flows/ingest.py:ingest_batch"


def local_timezone() -> str:
    """This machine's IANA zone (a cron's 02:00 is meant locally), else UTC."""
    try:
        return Path("/etc/timezone").read_text(encoding="utf-8").strip() or "UTC"
    except OSError:
        pass
    localtime = Path("/etc/localtime")
    if localtime.is_symlink() and "zoneinfo/" in str(localtime.readlink()):
        return str(localtime.readlink()).split("zoneinfo/", 1)[1]
    return "UTC"


def inbox_deployment(inbox: str | Path, cron: str, *, name: str, timezone: str | None = None,
                     store: str | None = None, audit_rate: float, min_age_seconds: float,
                     settings: ReadSettings | None = None, retry_failed: bool = False) -> RunnerDeployment:
    """The inbox pass on a cron schedule, to be served by ``prefect.serve`` (``formscan schedule``)."""
    folder = str(Path(inbox).resolve())
    return ingest_inbox.to_deployment(
        name=name,
        schedule=Cron(cron, timezone=timezone or local_timezone()),
        parameters={"inbox": folder, "store": store, "audit_rate": audit_rate,
                    "min_age_seconds": min_age_seconds, "retry_failed": retry_failed,
                    "settings": (settings or ReadSettings()).model_dump(mode="json")},
        description=f"Ingest the new files of {folder} into the review queue; move them to done/ or failed/.",
        tags=["formscan", "inbox"],
    )


def deploy_ingest(pool: str, name: str = "ingest", source: str | Path = PROJECT_DIR,
                  settings: ReadSettings | None = None) -> str:
    """Register ``ingest_batch`` on a work pool, its code taken from ``source`` (a folder every worker
    sees at that path, e.g. the installed project or a shared volume), reading pages with
    ``settings`` unless a run says otherwise; returns the deployment's id."""
    deployment = ingest_batch.from_source(source=str(source), entrypoint=INGEST_ENTRYPOINT)
    return str(deployment.deploy(name=name, work_pool_name=pool, build=False, push=False, print_next_steps=False,
                                 parameters={"settings": (settings or ReadSettings()).model_dump(mode="json")}))
