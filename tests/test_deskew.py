"""deskew / detect_orientation / rotate_upright."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.deskew import deskew, detect_orientation, estimate_skew, rotate_upright

from synthetic_pages import synthetic_form

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("skew", [-2.5, -1.13, -0.04, 0.0, 0.37, 1.8, 2.5])
@pytest.mark.parametrize("dpi", [150, 300])
def test_deskew_recovers_known_rotation(skew: float, dpi: int) -> None:
    # synthetic_form rotates counter-clockwise by skew (cv2 convention), as PIL.rotate does.
    image, _ = synthetic_form(dpi=dpi, skew_deg=skew, seed=3)
    straight, angle = deskew(image)
    assert abs(angle + skew) <= 0.05
    assert straight.shape == image.shape and straight.dtype == np.uint8
    assert abs(estimate_skew(straight)) <= 0.05
    # Rotated-in corners are white, not black.
    assert straight[0, 0] >= 240 and straight[-1, -1] >= 240


def test_deskew_colour_input() -> None:
    image, _ = synthetic_form(dpi=200, skew_deg=1.2, seal=True, colour=True)
    straight, angle = deskew(image)
    assert straight.shape == image.shape
    assert abs(angle + 1.2) <= 0.05


def test_blank_page_is_left_alone() -> None:
    blank = np.full((1000, 700), 250, np.uint8)
    out, angle = deskew(blank)
    assert angle == 0.0 and out is blank


def test_rotate_upright_round_trip() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for turns in (0, 90, 180, 270):
        back = rotate_upright(rotate_upright(image, turns), (360 - turns) % 360)
        assert np.array_equal(back, image)
    assert rotate_upright(image, 90).shape == (4, 3)
    assert rotate_upright(image, 90)[0, 0] == image[-1, 0]  # clockwise
    with pytest.raises(ValueError):
        rotate_upright(image, 45)


@pytest.mark.parametrize("turned", [0, 90, 270])
def test_orientation_quarter_turns_synthetic(turned: int) -> None:
    # Latin text is enough to tell text lines from columns (90 vs 0).
    image, _ = synthetic_form(dpi=200, seed=1)
    page = rotate_upright(image, turned)
    assert detect_orientation(page) in {(360 - turned) % 360, (540 - turned) % 360}


def _fixture_page() -> np.ndarray | None:
    truth_files = sorted((FIXTURES / "truth").glob("*.json"))
    if not truth_files or shutil.which("pdftoppm") is None:
        return None
    from pdf2image import convert_from_path

    path = truth_files[0]
    dpi = json.loads(path.read_text(encoding="utf-8"))["pages"][0]["scan"]["dpi"]
    pil = convert_from_path(str(FIXTURES / "scans" / f"{path.stem}.pdf"), dpi=dpi, first_page=1, last_page=1, grayscale=True)[0]
    straight, _ = deskew(np.asarray(pil))
    return straight


@pytest.fixture(scope="module")
def fixture_page() -> np.ndarray:
    page = _fixture_page()
    assert page is not None, "the committed fixture scans are missing"
    return page


@pytest.mark.parametrize("turned", [0, 90, 180, 270])
def test_orientation_all_turns_on_fixture(fixture_page: np.ndarray, turned: int) -> None:
    # A page turned clockwise by `turned` needs the rest of the full turn to be upright.
    page = rotate_upright(fixture_page, turned)
    turns = detect_orientation(page)
    assert turns == (360 - turned) % 360
    assert np.array_equal(rotate_upright(page, turns), fixture_page)
