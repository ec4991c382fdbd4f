"""docker-compose.yml is parsed for real (Debian's docker-compose validates without an engine)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_compose_file_is_valid_and_names_the_services():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is installed by scripts/setup.sh"
    done = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) >= {"postgres", "prefect-server", "formscan"}
