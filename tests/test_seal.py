import cv2
import numpy as np

from pipeline.seal import erase_seals, find_seals

DPI = 200
MM = DPI / 25.4


def page_with_seal(seal_grey: int = 175, rule_grey: int = 150):
    page = np.full((int(120 * MM), int(150 * MM)), 245, np.uint8)
    for y_mm in range(20, 110, 9):  # faded table rules
        cv2.line(page, (int(10 * MM), int(y_mm * MM)), (int(140 * MM), int(y_mm * MM)), rule_grey, 2)
    for x_mm in (10, 50, 80, 140):
        cv2.line(page, (int(x_mm * MM), int(20 * MM)), (int(x_mm * MM), int(101 * MM)), rule_grey, 2)
    cv2.putText(page, "223.86", (int(55 * MM), int(62 * MM)), cv2.FONT_HERSHEY_SIMPLEX, 0.045 * MM, 30, 2)
    seal = np.zeros_like(page)
    centre, radius = (int(70 * MM), int(60 * MM)), int(20 * MM)
    cv2.circle(seal, centre, radius, 255, int(1.2 * MM))
    cv2.putText(seal, "SEAL", (int(58 * MM), int(52 * MM)), cv2.FONT_HERSHEY_SIMPLEX, 0.05 * MM, 255, 3)
    stamped = np.where(seal > 0, (page.astype(int) * seal_grey // 255), page).astype(np.uint8)
    return stamped, page, seal > 0, centre, radius


def test_the_seal_is_found_where_it_was_stamped():
    stamped, _, _, centre, radius = page_with_seal()
    (seal,) = find_seals(stamped, DPI)
    assert abs(seal.x - centre[0]) < 3 * MM and abs(seal.y - centre[1]) < 3 * MM
    assert abs(seal.radius - radius) < 2 * MM


def test_seal_ink_goes_print_and_rules_stay():
    stamped, clean, seal_mask, _, _ = page_with_seal()
    erased = erase_seals(stamped, DPI)
    print_mask = clean < 100
    rule_mask = (clean > 100) & (clean < 200)
    only_seal = seal_mask & ~print_mask & ~rule_mask
    assert (erased[only_seal] > 230).mean() > 0.97
    assert (erased[print_mask] == stamped[print_mask]).all()
    # Where the ring runs tangent along a rule the two are one thick stroke; a little of such a
    # rule may go, everything else of the rules must stay.
    outside = rule_mask & ~seal_mask
    assert (erased[outside] == stamped[outside]).mean() > 0.99
    assert (erased[rule_mask] < 200).mean() > 0.95  # rules under the seal survive too


def test_a_page_without_a_seal_is_left_alone():
    _, clean, _, _, _ = page_with_seal()
    assert find_seals(clean, DPI) == []
    assert erase_seals(clean, DPI) is clean
