"""Property tests: text repair, number parsing and field paths hold for any input, not just the examples."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.accuracy import is_flagged, leaf_fields
from models.record import FUND_SOURCES, FormRecord, FundsRow, IndicatorRow
from pipeline.numbers import DASHES, NumberFormatError, parse_number
from pipeline.repair import repair_text

# No example database in the work tree, no flaky deadlines on a loaded 2-core machine.
PROPERTY = settings(
    database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow]
)

# Text that exercises the repair rules: CJK, ASCII and full-width punctuation, quotes, wraps, "%", "°".
FORM_ALPHABET = list("项目资金执行率（）【】，：；。中文 \t\n\r\u3000,:;!?()[]\"“”〝%°º˚>=<12.0abAB-—")
form_text = st.text(alphabet=st.sampled_from(FORM_ALPHABET), max_size=40)
any_text = st.text(max_size=60)


@PROPERTY
@given(st.one_of(any_text, form_text))
def test_repair_text_never_raises_and_is_idempotent(text):
    once = repair_text(text)
    assert isinstance(once, str)
    assert repair_text(once) == once


@PROPERTY
@given(st.one_of(any_text, form_text))
def test_repaired_text_has_no_line_breaks_and_spaces_only_between_latin_letters(text):
    repaired = repair_text(text)
    assert repaired.splitlines() in ([], [repaired])
    for match in re.finditer(r"\s+", repaired):
        before, after = repaired[match.start() - 1 : match.start()], repaired[match.end() : match.end() + 1]
        assert before.isascii() and before.isalpha() and after.isascii() and after.isalpha(), repr(repaired)


@PROPERTY
@given(any_text, st.booleans())
def test_parse_number_raises_only_number_format_error(text, percent):
    try:
        value = parse_number(text, percent=percent)
    except NumberFormatError:
        return
    assert value is None or isinstance(value, float)


@PROPERTY
@given(st.text(alphabet=st.sampled_from(list("0123456789.,%-+—－ 　１２３４５６７８９０．％")), max_size=20),
       st.booleans())
def test_parse_number_on_number_like_text(text, percent):
    try:
        value = parse_number(text, percent=percent)
    except NumberFormatError:
        return
    assert value is None or isinstance(value, float)


amounts = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2, allow_nan=False, allow_infinity=False
)
FULL_WIDTH_DIGITS = str.maketrans("0123456789.%", "０１２３４５６７８９．％")


@PROPERTY
@given(amounts)
def test_numbers_round_trip_through_the_ways_forms_print_them(amount):
    value = float(amount)
    plain = f"{amount:.2f}"
    assert parse_number(plain) == float(plain) == value
    assert parse_number(f"{amount:,.2f}") == value  # thousands separators
    assert parse_number(f" {plain}\n") == value  # stray whitespace from OCR
    assert parse_number(plain.translate(FULL_WIDTH_DIGITS)) == value  # full-width digits
    assert parse_number(f"{plain}%") == value  # percent points
    assert parse_number(plain, percent=True) == value  # a 执行率 cell without its "%"
    assert parse_number(f"{value!r}") == value  # Python's own shortest repr


@PROPERTY
@given(st.sampled_from(sorted(DASHES)), st.booleans())
def test_dashes_are_null(dash, percent):
    assert parse_number(dash, percent=percent) is None


# --- field paths: the paths flags use (``funds[0].executed``) and the matching that scores them ---

numbers = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
words = st.text(alphabet=st.sampled_from(list("产出指标数量质量时效完成率100%")), max_size=8)
funds_rows = st.builds(
    FundsRow, source=st.sampled_from(FUND_SOURCES), initial_budget=numbers, annual_budget=numbers,
    executed=numbers, weight=numbers, execution_rate=numbers, score=numbers,
)
indicator_rows = st.builds(
    IndicatorRow, level1=words, level2=words, name=words, target=words, actual=words,
    weight=numbers, score=numbers, deviation_reason=words,
)
records = st.builds(
    FormRecord, year=st.one_of(st.none(), st.integers(2000, 2100)), project_name=words, department=words,
    implementing_unit=words, funds=st.lists(funds_rows, max_size=12), indicators=st.lists(indicator_rows, max_size=12),
    total_weight=numbers, total_score=numbers,
)
RECORDS = settings(PROPERTY, max_examples=100)  # each example builds a whole record
_PATH = re.compile(r"^(?P<list>\w+)\[(?P<row>\d+)\]\.(?P<field>\w+)$|^(?P<scalar>\w+)$")


def resolve(record: dict, path: str) -> object:
    match = _PATH.match(path)
    assert match, path
    if match["scalar"]:
        return record[match["scalar"]]
    return record[match["list"]][int(match["row"])][match["field"]]


@RECORDS
@given(records)
def test_leaf_paths_resolve_to_their_values_and_cover_every_leaf(record):
    data = record.model_dump(mode="json")
    leaves = leaf_fields(data)
    for path, value in leaves.items():
        assert resolve(data, path) == value
    scalars = [key for key, value in data.items() if not isinstance(value, list)]
    rows = sum(len(row) for key in ("funds", "indicators") for row in data[key])
    assert len(leaves) == len(scalars) + rows


@RECORDS
@given(records, st.data())
def test_a_flag_marks_its_own_field_its_row_or_its_list_and_nothing_else(record, data):
    leaves = list(leaf_fields(record.model_dump(mode="json")))
    path = data.draw(st.sampled_from(leaves))
    assert is_flagged(path, [{"field": path}])
    for other in leaves:
        if other != path:
            assert not is_flagged(other, [{"field": path}]), (other, path)
    match = _PATH.match(path)
    if match["list"]:
        row = f"{match['list']}[{match['row']}]"
        # funds[1] must flag funds[1].x but never funds[10].x or funds_unit
        assert {p for p in leaves if is_flagged(p, [{"field": row}])} == {p for p in leaves if p.startswith(row + ".")}
        assert {p for p in leaves if is_flagged(p, [{"field": match["list"]}])} == {
            p for p in leaves if p.startswith(match["list"] + "[")
        }
