"""docker-compose.yml is parsed for real (Debian's docker-compose validates without an engine)."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_compose_file_is_valid_and_its_services_share_the_queue():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by scripts/setup.sh"
    done = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) >= {"postgres", "prefect-server", "deploy", "worker", "inbox", "review"}
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "prefect worker start --pool formscan" in services["worker"]["command"]
    prefect_db = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect_db.startswith("postgresql+asyncpg://") and "@postgres:5432/prefect" in prefect_db
    queues = {services[name]["environment"]["FORMSCAN_DATABASE_URL"] for name in ("worker", "inbox", "review")}
    assert len(queues) == 1 and "@postgres:5432/formscan" in queues.pop()
    api = {services[name]["environment"]["PREFECT_API_URL"] for name in ("deploy", "worker", "inbox")}
    assert api == {"http://prefect-server:4200/api"}
