"""The calibration bench: the pages it fits on, and how it turns observations into confidence."""

from pathlib import Path

from bench.calibrate import fit, pages_of

ROOT = Path(__file__).parent.parent


def test_a_fit_pools_the_pages_of_every_set_it_is_given():
    sets = [ROOT / "fixtures" / "truth", ROOT / "fixtures" / "styles" / "calc" / "truth"]
    jobs, truths = pages_of(sets)
    alone = [len(pages_of([s])[0]) for s in sets]
    assert len(jobs) == len(truths) == sum(alone) and min(alone) > 0
    assert all(Path(file).is_file() for file, _ in jobs)  # each scan found beside its own set's truth
    assert {Path(file).parent.parent for file, _ in jobs} == {s.parent for s in sets}
    assert all("project_name" in fields for fields in truths)


def test_a_class_s_confidence_is_its_rate_of_right_fields_smoothed():
    table = fit([("agreed", True)] * 99 + [("agreed", False), ("paddle>=0.99", True)])
    assert table["classes"]["agreed"] == {"fields": 100, "right": 99, "confidence": round(99.5 / 101, 5)}
    assert table["classes"]["paddle>=0.99"]["confidence"] == 0.75  # one right field is not trusted blindly
