"""The whole pipeline on the committed fixture scans, scored against their ground truth."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.accuracy import load_truth, score, summarise
from models import PageResult

ROOT = Path(__file__).parent.parent
SCANS = ROOT / "fixtures" / "scans"
TRUTH = ROOT / "fixtures" / "truth"


@pytest.fixture(scope="session")
def extracted(tmp_path_factory) -> list[dict]:
    """One `formscan extract` run over every committed fixture scan, shared by the tests below."""
    out = tmp_path_factory.mktemp("e2e") / "fixtures.jsonl"
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    done = subprocess.run(
        [sys.executable, "-m", "formscan", "extract", str(SCANS), "-o", str(out), "--workers", "2"],
        capture_output=True, text=True, env=env, timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def scored(extracted):
    return score(extracted, load_truth(TRUTH))


def test_every_line_is_a_valid_page_result(extracted):
    assert extracted
    for line in extracted:
        PageResult.model_validate(line)


def test_the_four_seed_forms_come_out_exactly_right(scored):
    seeds = [p for p in scored if p.file.startswith("seed-")]
    assert len(seeds) == 4
    for page in seeds:
        assert page.error is None, page.file
        assert page.wrong == [], f"{page.file}: {page.wrong}"


def test_field_accuracy_over_the_randomized_fixtures(scored):
    randomized = [p for p in scored if not p.file.startswith("seed-")]
    assert len(randomized) >= 10
    accuracy = summarise(randomized)["all"]["field_accuracy"]
    assert accuracy >= 0.97, [w for p in randomized for w in p.wrong]


def test_no_wrong_field_goes_unflagged(scored):
    silent = [(p.file, path, truth, got) for p in scored for path, truth, got, flagged in p.wrong if not flagged]
    assert silent == []


def test_pages_with_flags_need_review_and_others_are_accepted(extracted):
    for line in extracted:
        if "record" in line:
            assert line["status"] == ("needs_review" if line["flags"] else "auto_accepted")
