"""The fixture generator (fixtures/generate.py) and the committed fixtures it produced."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures import generate as gen  # noqa: E402
from models.record import FormRecord  # noqa: E402

FIX = ROOT / "fixtures"
TRUTH_FILES = sorted((FIX / "truth").glob("*.json"))
SEED_IDS = ["seed-1", "seed-2", "seed-3", "seed-4"]

B = "上海市宝山区行政服务中心"
EMPTY = (None, None, None, None, None, None)
# (source, initial_budget, annual_budget, executed, weight, execution_rate, score)
SEED_FUNDS = {
    "seed-1": [(223.86, 223.86, 222.85, 10, 99.55, 10), (223.86, 223.86, 222.85, None, 99.55, None)],
    "seed-2": [(0, 265, 246.66, 10, 93.08, 10), (None, 265, 246.66, None, 93.08, None)],
    "seed-3": [(200000, 200000, 177350.50, 10, 88.68, 9), EMPTY],
    "seed-4": [(400000, 700000, 546872.80, 10, 78.12, 7), EMPTY],
}
P, E, S = "产出指标", "效益指标", "满意度指标"
# (level1, level2, name, target, actual, weight, score, deviation)
SEED_INDICATORS = {
    "seed-1": [
        (P, "数量指标", "设备巡检完成率", "100%", "100%", 20, 20, ""),
        (P, "质量指标", "数据备份率", "100%", "100%", 10, 10, ""),
        (P, "时效指标", "设备运行完好率", "100%", "100%", 20, 20, ""),
        (E, "经济效益指标", "故障排除率", "100%", "100%", 10, 10, ""),
        (E, "社会效益指标", "有责投诉发生数", "0", "100%", 10, 10, ""),
        (E, "可持续影响指标", "长效管理制度建设", "完善", "完善", 10, 10, ""),
        (S, "服务对象满意度指标", "工作人员满意度", "95%", "100%", 10, 10, ""),
    ],
    "seed-2": [
        (P, "数量指标", "项目功能模块开发完成率", "100%", "100%", 20, 20, ""),
        (P, "质量指标", "设备运行完好率", "100%", "100%", 20, 20, ""),
        (P, "时效指标", "报告出具及时性", "及时", "及时", 10, 10, ""),
        (E, "可持续影响指标", "长效管理制度建设", "完善", "完善", 30, 30, ""),
        (S, "服务对象满意度指标", "工作人员满意度", "95%", "95%", 10, 9, "细节上进一步提升"),
    ],
    "seed-3": [
        (P, "数量指标", "年派送证照及上门揽收的数量", "10000", "24427", 20, 20, ""),
        (P, "质量指标", "快递准确性", "100%", "99.8%", 20, 20, ""),
        (P, "时效指标", "快递及时性", "及时", "及时", 10, 10, ""),
        (E, "可持续影响指标", "长效管理制度", "健全", "健全", 30, 30, ""),
        (S, "服务对象满意度指标", "企业满意度", ">90%", ">90%", 10, 10, ""),
    ],
    "seed-4": [
        (P, "数量指标", "政策推广次数", "24次", ">24次", 20, 20, ""),
        (P, "质量指标", "推广内容覆盖情况", "全面", "全面", 20, 20, ""),
        (P, "时效指标", "政策推广及时性", "及时", "及时", 10, 10, ""),
        (E, "社会效益指标", "行政中心知名度", "有效提高", "有效提高", 15, 15, ""),
        (E, "可持续影响指标", "长效管理制度", "健全", "健全", 15, 15, ""),
        (S, "服务对象满意度指标", "企业满意度", "95%", ">95%", 10, 10, ""),
    ],
}
SEED_TEXT = {
    "seed-1": ("网络系统运营经费（宝信息委【2019】53号）",
               "确保智能化现场服务大厅及“一网通办”相关功能的正常运行。",
               "项目包括中心信息管理系统硬件设备现场运维、软件系统现场运维、预留应急，以及保险费用、短信、网络通讯费。"
               "在执行过程中，建立《信息化管理制度》、《信息平台操作规范》等，签订运维合同，明确责任。", 100, 100),
    "seed-2": ("宝山区“一网通办”深化项目",
               "本次项目建设将在原有信息化的基础上，根据“一网通办”工作要求对宝山区一网通办进行深化，通过自助服务终端系统升级、"
               "微信端升级改造与相关服务、系统深化建设、“双减半”配合工作、长三角一体化线下专窗接入、与市级“好差评”对接联调等"
               "方面的建设调整，为公众提供全方位、高智能、更加方便快捷的服务体验。",
               "目前，已基本完成项目内容的建设，现阶段主要做好建设内容的运营保障和后期验收工作。", 100, 99),
    "seed-3": ("“一网通办”免费证照快递费用",
               "为本区办事企业提供免费证照快递寄送服务，及时了解掌握证照投递情况，督促邮政部门提高服务质量，提升服务对象满意度。"
               "年派送证照及上门揽收的数量达到10000件。",
               "为进一步优化营商环境，区行政服务中心把EMS快递服务功能嵌入“一网通办”服务流程，为办事企业提供证照快递寄送服务，"
               "上海市范围内上门揽收服务，让“快递送”代替“企业跑”，实现“减跑动”。", 100, 99),
    "seed-4": ("广告宣传费（抄告单{2015}47）", "建设公开、透明的政务服务窗口。",
               "及时全面宣传中心相关业务，提高信息传播速度及中心知名度。", 100, 97),
}


def expected_seed(fid: str) -> dict:
    name, exp, act, tw, ts = SEED_TEXT[fid]
    sources = ["年度资金总额", "当年财政拨款", "上年结转资金", "其他资金"]
    rows = SEED_FUNDS[fid] + [EMPTY, EMPTY]
    keys = ["initial_budget", "annual_budget", "executed", "weight", "execution_rate", "score"]
    funds = [dict(source=s, **dict(zip(keys, r))) for s, r in zip(sources, rows)]
    inds = [dict(zip(["level1", "level2", "name", "target", "actual", "weight", "score", "deviation_reason"], i))
            for i in SEED_INDICATORS[fid]]
    return FormRecord.model_validate(dict(
        year=2020, project_name=name, department=B, implementing_unit=B, funds_unit="万元", funds=funds,
        goal_expected=exp, goal_actual=act, indicators=inds, total_weight=tw, total_score=ts,
    )).model_dump(mode="json")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def check_grid(grid: dict) -> None:
    n_rows, n_cols = grid["n_rows"], grid["n_cols"]
    assert len(grid["row_edges_mm"]) == n_rows + 1 and len(grid["col_edges_mm"]) == n_cols + 1
    cover = [[0] * n_cols for _ in range(n_rows)]
    keys = [(c["row"], c["col"]) for c in grid["cells"]]
    assert keys == sorted(keys), "cells must be row-major"
    xs, ys = grid["col_edges_mm"], grid["row_edges_mm"]
    for c in grid["cells"]:
        assert c["row_span"] >= 1 and c["col_span"] >= 1
        for r in range(c["row"], c["row"] + c["row_span"]):
            for k in range(c["col"], c["col"] + c["col_span"]):
                cover[r][k] += 1
        x0, y0, x1, y1 = c["box_mm"]
        assert (x0, x1) == (xs[c["col"]], xs[c["col"] + c["col_span"]])
        assert (y0, y1) == (ys[c["row"]], ys[c["row"] + c["row_span"]])
    assert all(v == 1 for row in cover for v in row), "every fine cell covered exactly once"
    # no slivers: distinct rule positions at least 4 mm apart
    assert min(b - a for a, b in zip(xs, xs[1:])) >= 4.0 - 1e-6
    assert min(b - a for a, b in zip(ys, ys[1:])) >= 4.0 - 1e-6


def check_arithmetic(rec: dict) -> None:
    for f in rec["funds"]:
        if f["executed"] is not None and f["annual_budget"]:
            assert abs(f["execution_rate"] - f["executed"] / f["annual_budget"] * 100) <= 0.0051, f
        if f["weight"] is not None:
            assert f["score"] is not None and 0 <= f["score"] <= f["weight"]
    inds = rec["indicators"]
    assert 3 <= len(inds) <= 9
    for i in inds:
        assert i["name"] and i["weight"] is not None and 0 <= i["score"] <= i["weight"]
    total = rec["funds"][0]
    assert total["weight"] + sum(i["weight"] for i in inds) == rec["total_weight"] == 100
    assert abs(total["score"] + sum(i["score"] for i in inds) - rec["total_score"]) < 1e-9


def test_committed_set_complete():
    ids = {p.stem for p in TRUTH_FILES}
    assert set(SEED_IDS) <= ids and "batch-3" in ids
    assert len([i for i in ids if i.startswith("random-")]) == 16
    size = sum(p.stat().st_size for p in (FIX / "scans").glob("*.pdf")) + sum(p.stat().st_size for p in TRUTH_FILES)
    assert size <= 15 * 1024 * 1024
    assert len(load(FIX / "truth" / "batch-3.json")["pages"]) == 3


@pytest.mark.parametrize("path", TRUTH_FILES, ids=[p.stem for p in TRUTH_FILES])
def test_committed_truth(path: Path):
    truth = load(path)
    pdf = FIX / truth["file"]
    assert pdf.exists()
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert len(fonts.strip().splitlines()) == 2, "image-only PDF: no fonts"
    lines = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    images = [ln.split() for ln in lines.splitlines()[2:] if ln.strip()]
    assert len(images) == len(truth["pages"]), "one image per page"
    for img, page in zip(images, truth["pages"]):
        assert int(img[0]) == page["page"]
        assert int(img[12]) == int(img[13]) == page["scan"]["dpi"]
        assert [int(img[3]), int(img[4])] == page["scan"]["page_px"]
        FormRecord.model_validate(page["record"])
        check_grid(page["grid"])
        scan = page["scan"]
        assert scan["font_style"] in ("serif", "sans")
        assert 150 <= scan["dpi"] <= 300 and abs(scan["skew_deg"]) <= 2.5
        assert (scan["seal_box_mm"] is not None) == scan["seal"]
        if not path.stem.startswith("seed"):
            check_arithmetic(page["record"])
        for c in page["grid"]["cells"]:  # numbers are never wrapped
            assert not (re.fullmatch(r"[0-9.%\n]+", c["text"]) and "\n" in c["text"]), c


@pytest.mark.parametrize("fid", SEED_IDS)
def test_seed_records(fid: str):
    page = load(FIX / "truth" / f"{fid}.json")["pages"][0]
    assert page["record"] == expected_seed(fid)
    assert page["header"]["year_text"].replace(" ", "") == "（2020年度）"


def test_seed_damage_mix():
    scans = [load(FIX / "truth" / f"{fid}.json")["pages"][0]["scan"] for fid in SEED_IDS]
    assert any(s["seal"] for s in scans)
    assert any(abs(s["skew_deg"]) >= 2 for s in scans)
    assert any(s["dpi"] <= 200 for s in scans)
    assert any(s["color"] for s in scans)


def test_seed_printed_texts():
    cells = {c["text"] for c in load(FIX / "truth" / "seed-4.json")["pages"][0]["grid"]["cells"]}
    assert "有效提\n高" in cells
    assert "上海市宝山区行政服务中\n心" in cells
    g1 = {c["text"] for c in load(FIX / "truth" / "seed-1.json")["pages"][0]["grid"]["cells"]}
    assert "年度\n总体\n目标" in g1 and "绩\n效\n指\n标" in g1 and "99.55%" in g1 and gen.DASH in g1


def test_random_forms_arithmetic_and_determinism():
    rng = random.Random(7)
    for k in range(25):
        form = gen.random_form(rng, f"t{k}")
        rec = gen.form_record(form).model_dump()
        check_arithmetic(rec)
        assert 2019 <= rec["year"] <= 2024
        assert re.fullmatch(r"（ *\d{4} ?年度）", form.year_text)
    a = gen.form_record(gen.random_form(123)).model_dump()
    b = gen.form_record(gen.random_form(123)).model_dump()
    assert a == b


def test_render_page_clean_small():
    form = gen.random_form(5)
    scan = gen.ScanParams(dpi=100, font=gen.available_fonts()[0], **gen.CLEAN_SCAN)
    img, truth = gen.render_page(form, scan)
    assert img.size == (round(210 / 25.4 * 100), round(297 / 25.4 * 100))
    check_grid(truth["grid"])
    assert truth["record"] == gen.form_record(form).model_dump(mode="json")
    texts = "".join(c["text"].replace("\n", "") for c in truth["grid"]["cells"])
    assert form.project_name in texts


def test_random_scan_respects_parameters():
    rng = random.Random(1)
    fonts = gen.available_fonts()[:1]
    for _ in range(20):
        s = gen.random_scan(rng, fonts, dpi_range=(150, 160), skew_max_deg=1.0, jpeg_range=(50, 55))
        assert s.font in fonts and 150 <= s.dpi <= 160 and abs(s.skew_deg) <= 1.0 and 50 <= s.jpeg_quality <= 55


def test_a_set_whose_fonts_are_missing_is_refused_by_name(monkeypatch, tmp_path):
    import bench.eval_set as eval_set

    installed = [f for f in eval_set.available_fonts() if f != "WenQuanYi Micro Hei"]
    monkeypatch.setattr(eval_set, "available_fonts", lambda: installed)
    assert eval_set.missing_fonts("evaluation") == ["WenQuanYi Micro Hei"]
    with pytest.raises(LookupError, match="WenQuanYi Micro Hei"):
        eval_set.generate(tmp_path, 1, "evaluation")
    assert not any(tmp_path.iterdir())  # nothing written under the set's name
