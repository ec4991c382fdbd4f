from models import FormRecord
from pipeline.assemble import AssembledPage
from pipeline.validate import record_notices, rule_flags, validate


def seed_one() -> FormRecord:
    """Form 1 of the seed file, as printed."""
    ind = lambda l1, l2, name, target, actual, w, s: dict(  # noqa: E731
        level1=l1, level2=l2, name=name, target=target, actual=actual, weight=w, score=s
    )
    return FormRecord.model_validate(
        dict(
            year=2020,
            project_name="网络系统运营经费（宝信息委【2019】53号）",
            department="上海市宝山区行政服务中心",
            implementing_unit="上海市宝山区行政服务中心",
            funds=[
                dict(source="年度资金总额", initial_budget=223.86, annual_budget=223.86, executed=222.85,
                     weight=10, execution_rate=99.55, score=10),
                dict(source="当年财政拨款", initial_budget=223.86, annual_budget=223.86, executed=222.85,
                     execution_rate=99.55),
                dict(source="上年结转资金"),
                dict(source="其他资金"),
            ],
            goal_expected="确保智能化现场服务大厅及“一网通办”相关功能的正常运行。",
            goal_actual="项目包括……",
            indicators=[
                ind("产出指标", "数量指标", "设备巡检完成率", "100%", "100%", 20, 20),
                ind("产出指标", "质量指标", "数据备份率", "100%", "100%", 10, 10),
                ind("产出指标", "时效指标", "设备运行完好率", "100%", "100%", 20, 20),
                ind("效益指标", "经济效益指标", "故障排除率", "100%", "100%", 10, 10),
                ind("效益指标", "社会效益指标", "有责投诉发生数", "0", "100%", 10, 10),
                ind("效益指标", "可持续影响指标", "长效管理制度建设", "完善", "完善", 10, 10),
                ind("满意度指标", "服务对象满意度指标", "工作人员满意度", "95%", "100%", 10, 10),
            ],
            total_weight=100,
            total_score=100,
        )
    )


def reasons(record: FormRecord) -> set[tuple[str, str]]:
    return {(f.field, f.reason) for f in rule_flags(record)}


def test_a_consistent_form_breaks_no_rule():
    assert reasons(seed_one()) == set()
    assert validate(AssembledPage(seed_one())) == []


def test_misread_execution_rate_is_flagged_with_the_computed_proposal():
    record = seed_one()
    record.funds[0].execution_rate = 90.55  # "99.55" with one digit misread
    flags = [f for f in rule_flags(record) if f.reason == "rule:execution_rate"]
    # Any of the three terms may be the misread one: all are shown, the rate gets the proposal.
    assert [f.field for f in flags] == ["funds[0].execution_rate", "funds[0].annual_budget", "funds[0].executed"]
    assert flags[0].proposal == "99.55"


def test_a_rate_in_a_row_without_amounts_is_flagged():
    # hard-012: the blank 其他资金 row's 执行率 cell, a rule's remnant read "1" by both engines.
    record = seed_one()
    record.funds[3].execution_rate = 1.0
    flags = [f for f in rule_flags(record) if f.reason == "rule:execution_rate"]
    assert [f.field for f in flags] == ["funds[3].execution_rate"]
    assert "no 全年预算数 or 全年执行数" in flags[0].message
    # One amount present is not this case: the 执行率 equation judges that row.
    record.funds[3].executed = 1.0
    assert ("funds[3].execution_rate", "rule:execution_rate") not in reasons(record)


def test_score_above_weight_is_flagged():
    record = seed_one()
    record.indicators[1].score = 16
    assert ("indicators[1].score", "rule:score_le_weight") in reasons(record)
    assert ("total_score", "rule:scores_sum") in reasons(record)
    assert ("indicators[4].score", "rule:scores_sum") in reasons(record)  # every term of the broken sum


def test_a_score_without_its_weight_flags_the_weight_even_when_no_total_was_read():
    # The 分值 cell read as blank and the 总分 row's 分值 not read either: no sum can catch it.
    record = seed_one()
    record.indicators[0].weight = None
    record.total_weight = None
    assert ("indicators[0].weight", "rule:score_le_weight") in reasons(record)
    assert not any(field.startswith("indicators[1]") for field, _ in reasons(record))


def test_sums_must_match_the_totals():
    record = seed_one()
    record.indicators[0].weight = 25
    flags = {f.field: f for f in rule_flags(record)}
    assert flags["total_weight"].reason == "rule:weights_sum"
    assert flags["total_weight"].proposal == "105"


def test_yuan_amounts_under_a_wan_yuan_heading_are_a_notice_not_a_review_task():
    record = seed_one()
    assert record_notices(record) == []
    record.funds[0].annual_budget = 200000
    record.funds[0].initial_budget = 200000
    record.funds[0].executed = 177350.5
    record.funds[0].execution_rate = 88.68
    (notice,) = record_notices(record)
    assert notice.rule == "amount_plausible" and "200000 万元" in notice.message
    # Printed so, and read right: no field for a reviewer to correct.
    assert not any(f == "funds_unit" for f, _ in reasons(record))
    record.funds_unit = "元"
    assert record_notices(record) == []


def test_missing_required_fields_are_flagged():
    record = seed_one()
    record.department = ""
    record.total_score = None
    got = reasons(record)
    assert ("department", "missing") in got
    assert ("total_score", "missing") in got


def test_a_score_on_a_sub_row_is_flagged():
    record = seed_one()
    record.funds[1].weight = 10
    assert ("funds[1].weight", "rule:subrow_unscored") in reasons(record)


def test_a_label_inside_a_value_means_cells_were_merged():
    record = seed_one()
    record.department = "上海市宝山区行政服务中心实施单位"
    assert ("department", "rule:label_in_value") in reasons(record)


def test_a_broken_equation_confirms_nothing_and_a_holding_one_confirms_its_terms():
    from pipeline.validate import confirmed_by_rules

    record = seed_one()
    assert {"funds[0].executed", "total_weight", "indicators[3].score"} <= confirmed_by_rules(record)
    record.funds[0].executed = 212.85
    record.indicators[3].score = 9
    confirmed = confirmed_by_rules(record)
    assert "funds[0].executed" not in confirmed and "indicators[3].score" not in confirmed
    assert "indicators[3].weight" in confirmed  # the weights still add up


def test_a_number_that_does_not_parse_is_classed_apart_from_the_readings_it_came_from():
    from pipeline.assemble import FieldEvidence
    from pipeline.grid import Box, Cell
    from pipeline.ocr import CellText
    from pipeline.validate import evidence_classes

    record = seed_one()
    record.funds[0].execution_rate = None
    cell = Cell(3, 8, 1, 1, Box(0, 0, 10, 10))
    read = CellText("77.3%路", 0.995, "paddle", {"paddle": "77.3%路", "tesseract": "77.3"})
    page = AssembledPage(record, {"funds[0].execution_rate": FieldEvidence(cell, read)})
    page.unparseable["funds[0].execution_rate"] = "77.3%路"
    assert evidence_classes(page)["funds[0].execution_rate"] == "unparseable"
    assert {f.reason for f in validate(page) if f.field == "funds[0].execution_rate"} == {"unparseable"}


def test_yuan_sized_amounts_are_not_vouched_for_by_a_rate_printed_to_hundredths():
    from pipeline.validate import confirmed_by_rules

    record = seed_one()
    assert {"funds[0].executed", "funds[0].annual_budget"} <= confirmed_by_rules(record)
    record.funds[0].annual_budget = record.funds[0].initial_budget = 922306.65 / 0.9955
    record.funds[0].executed = 922366.65  # the tens digit misread: the rate still holds
    assert not {"funds[0].executed", "funds[0].annual_budget"} & confirmed_by_rules(record)


def test_pp_ocr_alone_reading_a_number_not_as_the_form_prints_it_is_malformed():
    from pipeline.assemble import FieldEvidence
    from pipeline.grid import Box, Cell
    from pipeline.ocr import CellText
    from pipeline.validate import evidence_classes

    record = seed_one()
    record.funds[2].execution_rate = 1.0  # a speck in the 上年结转资金 row's 执行率, read as "1"
    speck = CellText("1", 0.9995, "paddle", {"paddle": "1", "tesseract": "|"})
    rate = CellText("99.55%", 0.9995, "paddle", {"paddle": "99.55%", "tesseract": "99.559"})
    page = AssembledPage(record, {
        "funds[2].execution_rate": FieldEvidence(Cell(5, 8, 1, 1, Box(0, 0, 10, 10)), speck),
        "funds[1].execution_rate": FieldEvidence(Cell(4, 8, 1, 1, Box(0, 0, 10, 10)), rate),
    })
    classes = evidence_classes(page)
    assert classes["funds[2].execution_rate"] == "paddle_malformed"
    assert classes["funds[1].execution_rate"] != "paddle_malformed"


def test_the_rate_equation_pins_a_large_amount_only_when_asked_to_hold_roughly():
    # Printed to 0.01 %, 执行率 does not pin a large amount's last digits (922306.65 for
    # 922366.65 holds), so it never confirms one; asked only whether it holds roughly, it does
    # tell 430000 from a seal-cut 130000.
    from pipeline.validate import confirmed_by_rules

    record = seed_one()
    record.funds[0].annual_budget, record.funds[0].executed, record.funds[0].execution_rate = 430000.0, 430000.0, 100.0
    assert "funds[0].executed" not in confirmed_by_rules(record)
    assert "funds[0].executed" in confirmed_by_rules(record, any_amount=True)
    record.funds[0].executed = 130000.0
    assert "funds[0].executed" not in confirmed_by_rules(record, any_amount=True)


def test_a_quotation_mark_without_its_partner_is_flagged():
    # Both engines read 与市级“好差评”对接 as 与市级好差评“对接: the opening mark dropped, the
    # closing one read as an opening one. Agreement cannot vouch for it; the pairing can.
    record = seed_one()
    assert not [r for r in reasons(record) if r[1] == "rule:marks_paired"]  # seed 1 prints “一网通办” whole
    record.goal_expected = "根据“一网通办”工作要求，与市级好差评“对接联调。"
    record.indicators[2].deviation_reason = "按《档案法》要求整改】"
    record.project_name = "网络系统运营经费（宝信息委【2019】53号）"  # pairs: not flagged
    flagged = {path for path, reason in reasons(record) if reason == "rule:marks_paired"}
    assert flagged == {"goal_expected", "indicators[2].deviation_reason"}


def test_an_indicator_row_without_its_level_is_flagged():
    # The 二级指标 cell a seal's erasure emptied: every indicator row has its 一级 and 二级指标.
    record = seed_one()
    assert not [r for r in reasons(record) if r[1] == "missing"]
    record.indicators[6].level2 = ""
    assert ("indicators[6].level2", "missing") in reasons(record)


def test_a_lone_unread_term_of_a_sum_is_offered_what_the_total_leaves():
    record = seed_one()
    record.indicators[3].weight = None  # a seal over the cell: read as nothing
    proposals = {f.field: f.proposal for f in rule_flags(record) if f.reason == "rule:weights_sum"}
    assert proposals["indicators[3].weight"] == "10"
    assert proposals["indicators[2].weight"] is None  # read terms are flagged, not second-guessed
    assert proposals["total_weight"] == "90"
