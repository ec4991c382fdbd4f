import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def formscan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formscan", *args], capture_output=True, text=True, timeout=600)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_help_explains_the_output_and_options():
    done = formscan("extract", "--help")
    assert done.returncode == 0
    for word in ("--workers", "-o", "auto_accepted", "error", "Exit status"):
        assert word in done.stdout


def test_unreadable_files_give_error_lines_and_a_failing_exit(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.pdf").write_text("meeting notes, not a scan")
    out = tmp_path / "out.jsonl"
    done = formscan("extract", str(tmp_path / "empty.pdf"), str(tmp_path / "notes.pdf"),
                    str(tmp_path / "missing.pdf"), "-o", str(out))
    assert done.returncode == 1
    got = {Path(l["source"]["file"]).name: l["error"]["kind"] for l in lines(out)}
    assert got == {"empty.pdf": "corrupt", "notes.pdf": "unsupported", "missing.pdf": "not_found"}
    assert all("record" not in l for l in lines(out))


def test_a_bad_file_does_not_stop_the_good_one(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n%%EOF truncated")
    good = ROOT / "fixtures" / "scans" / "seed-4.pdf"
    out = tmp_path / "out.jsonl"
    done = formscan("extract", str(tmp_path / "broken.pdf"), str(good), "-o", str(out), "--workers", "1")
    assert done.returncode == 0, done.stderr
    results = {Path(l["source"]["file"]).name: l for l in lines(out)}
    assert results["broken.pdf"]["error"]["kind"] == "corrupt"
    assert results["seed-4.pdf"]["record"]["project_name"] == "广告宣传费（抄告单{2015}47）"
    assert "1 records" in done.stderr or "records" in done.stderr


def test_the_commands_modules_share_options_without_importing_each_other():
    # formscan.cli registers the flow and review commands; they take the shared options from
    # formscan.options, never from the command line module that imports them.
    probe = ("import sys, formscan.flow_commands, review.commands; "
             "print('formscan.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
