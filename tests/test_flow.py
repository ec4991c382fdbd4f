"""The Prefect extract flow, run for real on Prefect's local test server."""

import json
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_extract_flow_writes_one_line_per_page_and_reports_failures(prefect_api, tmp_path):
    from flows.extract import extract_flow

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 truncated")
    out = tmp_path / "records.jsonl"
    counts = extract_flow([str(ROOT / "fixtures" / "scans" / "seed-2.pdf"), str(broken)], str(out))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_file = {Path(line["source"]["file"]).name: line for line in lines}
    assert set(by_file) == {"seed-2.pdf", "broken.pdf"}
    assert by_file["broken.pdf"]["error"]["kind"] == "corrupt"
    assert by_file["seed-2.pdf"]["record"]["project_name"] == "宝山区“一网通办”深化项目"
    assert counts["error"] == 1 and sum(counts.values()) == 2
