import pytest

from pipeline.numbers import NumberFormatError, parse_number, printed_as


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("223.86", 223.86),
        ("177350.50", 177350.5),
        ("0", 0.0),
        ("10", 10.0),
        ("99.55%", 99.55),
        ("99.55", 99.55),
        ("1,234.5", 1234.5),
        ("—", None),
        ("", None),
        ("  ", None),
        ("１０", 10.0),  # full-width digits
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_percent_column_accepts_a_missing_sign():
    assert parse_number("93.08", percent=True) == 93.08


@pytest.mark.parametrize("text", ["及时", "1O", "12.3.4", "%"])
def test_text_that_is_no_number_is_an_error(text):
    with pytest.raises(NumberFormatError):
        parse_number(text)


@pytest.mark.parametrize(
    ("kind", "text", "printed"),
    [
        ("rate", "88.42%", True), ("rate", "88.429", False), ("rate", "100%", True),
        ("amount", "223.86", True), ("amount", "1,020,000", True), ("amount", "223.861", False),
        ("amount", "343.10", True), ("amount", "1090000", True),
        ("amount", "398.0", False),  # 398.05 with its last digit lost: amounts carry both decimals or none
        ("score", "7.6", True), ("score", "10", True), ("score", "10%", False),
    ],
)
def test_numbers_are_trusted_on_one_engine_only_as_the_form_prints_them(kind, text, printed):
    assert printed_as(kind, text) is printed
