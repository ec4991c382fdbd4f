"""What the review UI calls things: the form's own labels for field paths, and why a field is
flagged in words a finance clerk knows. Chinese (the form's printed words) by default, English
as the reviewer's option.

Labels come from the form's template (``pipeline/templates/*.toml``): a header field is named
by the label printed beside it (``project_name`` 项目名称), a table cell by its row's printed
label and its column's header (``funds[0].executed`` 年度资金总额 全年执行数), or, in a table of
open rows, by the table, the row's number on the form (1-based) and the header
(``indicators[6].target`` 绩效指标 第7行 年度指标值). A template record's fields get the
labels its own template prints.

Flag reasons are turned into words by ``REASONS``: per reason, a pattern on the flag's message
(the rule's numbers are taken from it) and a text per language. The same table drives the
browser (``reason_table``), so what the page says after a save is what the server says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from models import FORM_TYPE, FormRecord, TemplateRecord
from pipeline.errors import TemplateError
from pipeline.templates import FieldPart, Section, Template, get_template, template_for_form_type

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_COOKIE = "formscan_lang"

Record = FormRecord | TemplateRecord

# The printed words in English (the form has no English version: these are ours).
PRINTED_EN = {
    "年度": "Year", "表格类型": "Form type", "整页": "(the page)", "资金来源": "Source of funds", "单位": "unit",
    "项目名称": "Project name", "主管部门": "Supervising department", "实施单位": "Implementing unit",
    "项目资金": "Project funds", "年度资金": "Annual funds", "年度资金总额": "Total annual funds",
    "当年财政拨款": "Current-year appropriation", "上年结转资金": "Carried over from last year",
    "其他资金": "Other funds", "基本支出": "Basic expenditure", "项目支出": "Project expenditure",
    "年初预算数": "Initial budget", "全年预算数": "Annual budget", "全年执行数": "Executed in the year",
    "分值": "Weight", "执行率": "Execution rate", "得分": "Score",
    "年度总体目标": "Overall annual goal", "预期目标": "Expected", "实际完成情况": "Achieved",
    "绩效指标": "Performance indicators", "一级指标": "Level-1 indicator", "二级指标": "Level-2 indicator",
    "三级指标": "Level-3 indicator", "年度指标值": "Annual target", "实际完成值": "Actual value",
    "偏差原因分析及改进措施": "Deviation: reasons and improvements", "总分": "Total",
    "部门（单位）名称": "Department (unit) name", "年度主要任务": "Main tasks of the year", "任务名称": "Task",
    "主要内容": "Main content", "对应项目": "Related project", "预算数": "Budget", "执行数": "Executed",
}
# Tables whose title the template does not print as a unit label (项目资金（万元）).
SECTION_TITLES = {"indicators": "绩效指标", "tasks": "年度主要任务", "funds": "项目资金"}
# Header fields printed together under one heading.
GROUP_TITLES = {"goal_expected": "年度总体目标", "goal_actual": "年度总体目标"}
# Fields holding sentences: edited in a multi-line box.
LONG_KEYS = frozenset({"goal_expected", "goal_actual", "deviation_reason", "content"})


def lang_of(value: str | None) -> str:
    """A supported language code: ``value`` if it is one, else the default (Chinese)."""
    return value if value in LANGS else DEFAULT_LANG


def printed(word: str, lang: str = DEFAULT_LANG) -> str:
    """A printed word of the form, in ``lang`` (unknown words stay as printed)."""
    return word if lang != "en" else PRINTED_EN.get(word, word)


def _join(parts: Iterable[str], lang: str) -> str:
    return (", " if lang == "en" else " ").join(p for p in parts if p)


def _row_number(index: int, lang: str) -> str:
    return f"row {index + 1}" if lang == "en" else f"第{index + 1}行"


def template_for(record: Record | Mapping[str, Any] | str | None) -> Template:
    """The template a record (model, JSON or form_type) was read with; the project form's when unknown."""
    if record is None:
        return get_template()
    form_type = record if isinstance(record, str) else (
        record.get("form_type", FORM_TYPE) if isinstance(record, Mapping) else record.form_type)
    if form_type == FORM_TYPE:
        return get_template()
    try:
        return template_for_form_type(form_type)
    except TemplateError:
        return get_template()


def _as_dict(record: Record | Mapping[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return {}
    return dict(record) if isinstance(record, Mapping) else record.model_dump(mode="json")


def section_title(template: Template, name: str, lang: str = DEFAULT_LANG) -> str:
    """A table's heading as printed: the label its unit is printed in (项目资金), else a known title."""
    unit = template.fields.get(f"{name}_unit")
    if unit is not None and unit.place == "unit_in":
        return printed(unit.label, lang)
    if name in SECTION_TITLES:
        return printed(SECTION_TITLES[name], lang)
    section = template.sections.get(name)
    return printed(section.anchor, lang) if section else name


def _header_label(template: Template, part: FieldPart, lang: str) -> str:
    if part.place == "total_of":
        section = template.sections[part.section or ""]
        return _join([printed(part.label, lang), printed(section.headers.get(part.column or "", ""), lang)], lang)
    if part.place == "unit_in":
        return _join([printed(part.label, lang), printed("单位", lang)], lang)
    group = GROUP_TITLES.get(part.name)
    return _join([printed(group, lang) if group else "", printed(part.label, lang)], lang)


def row_label(template: Template, section: Section, index: int, row: Mapping[str, Any] | None,
              lang: str = DEFAULT_LANG) -> str:
    """How the form names row ``index`` of a table: its printed label (年度资金总额), or 绩效指标 第3行."""
    if section.row_label:
        label = (row or {}).get(section.row_label) or (
            section.row_labels[index] if index < len(section.row_labels) else "")
        if label:
            return printed(str(label), lang)
    return _join([section_title(template, section.name, lang), _row_number(index, lang)], lang)


_PATH = re.compile(r"^(?P<section>\w+)\[(?P<index>\d+)\]\.(?P<key>\w+)$")


def field_label(path: str, record: Record | Mapping[str, Any] | str | None = None,
                lang: str = DEFAULT_LANG) -> str:
    """The form's label for a field path: ``funds[0].executed`` -> 年度资金总额 全年执行数.

    ``record`` (a model, its JSON, or just its form_type) says which form's labels, and gives
    labelled rows their printed label; without it the project form's are used.
    """
    lang = lang_of(lang)
    template = template_for(record)
    match = _PATH.match(path)
    if match:
        name, index, key = match["section"], int(match["index"]), match["key"]
        section = template.sections.get(name)
        rows = _as_dict(record).get(name) if not isinstance(record, str) else None
        row = rows[index] if isinstance(rows, list) and index < len(rows) and isinstance(rows[index], dict) else None
        if section is None:
            return _join([name, _row_number(index, lang), key], lang)
        if key == section.row_label:
            return _join([section_title(template, name, lang), _row_number(index, lang), printed("资金来源", lang)],
                         lang)
        header = printed(section.headers.get(key, key), lang)
        return _join([row_label(template, section, index, row, lang), header], lang)
    if path in template.sections:
        return section_title(template, path, lang)
    part = template.fields.get(path)
    if part is not None:
        return _header_label(template, part, lang)
    if path == "year":
        return printed("年度", lang)
    if path == "form_type":
        return printed("表格类型", lang)
    return path


def field_paths(record: Record | Mapping[str, Any]) -> list[str]:
    """Every field path of a record: its header fields, then each row's cells, as stored."""
    paths = []
    for name, value in _as_dict(record).items():
        if isinstance(value, list) and all(isinstance(row, dict) for row in value):
            paths += [f"{name}[{i}].{key}" for i, row in enumerate(value) for key in row]
        elif not isinstance(value, (list, dict)):
            paths.append(name)
    return paths


def field_labels(record: Record | Mapping[str, Any], lang: str = DEFAULT_LANG) -> dict[str, str]:
    """Every field path of ``record`` (and each of its tables, which a flag may name) -> its label."""
    data = _as_dict(record)
    labels = {path: field_label(path, record, lang) for path in field_paths(record)}
    labels.update({name: field_label(name, record, lang) for name, value in data.items() if isinstance(value, list)})
    return labels


def is_long(path: str, value: str = "") -> bool:
    """Is the field a sentence (a goal, a 偏差原因), edited in a multi-line box?"""
    return path.rsplit(".", 1)[-1] in LONG_KEYS or "\n" in value or len(value) > 60


# --- flag reasons ------------------------------------------------------------------------------

_NUM = r"(-?[\d.]+)"
# Per reason, in order: the first entry whose pattern is found in the flag's message speaks.
# {1}, {2}, ... are the pattern's groups. Patterns use only what Python and JavaScript share.
REASONS: tuple[dict[str, str], ...] = (
    {"reason": "low_confidence", "pattern": "disagree",
     "zh": "两次识别结果不一致", "en": "The two readings disagree"},
    {"reason": "low_confidence", "pattern": "",
     "zh": "识别把握不大", "en": "The reading is uncertain"},
    {"reason": "engines_disagree", "pattern": "",
     "zh": "两次识别结果不一致", "en": "The two readings disagree"},
    {"reason": "missing", "pattern": "^no indicator rows were found",
     "zh": "未读到任何绩效指标行", "en": "No indicator row was read"},
    {"reason": "missing", "pattern": "^no task rows were found",
     "zh": "未读到任何年度主要任务行", "en": "No task row was read"},
    {"reason": "missing", "pattern": "^no (.+) rows were found",
     "zh": "未读到任何行", "en": "No row was read"},
    {"reason": "missing", "pattern": "^no (.+) row was found",
     "zh": "未找到“{1}”行", "en": "No “{1}” row was found"},
    {"reason": "missing", "pattern": "every row has one",
     "zh": "未读到（每一行都应填写）", "en": "Not read (every row has one)"},
    {"reason": "missing", "pattern": "",
     "zh": "未读到", "en": "Not read"},
    {"reason": "unparseable", "pattern": "",
     "zh": "无法识别为数字", "en": "Not readable as a number"},
    {"reason": "rule:execution_rate", "pattern": f"^执行率 {_NUM}% in a row with no",
     "zh": "这一行没有预算数和执行数，却有执行率 {1}%",
     "en": "An execution rate of {1}% in a row with no budget or executed amount"},
    {"reason": "rule:execution_rate", "pattern": f"= {_NUM}/{_NUM} = {_NUM}%",
     "zh": "执行率与预算、执行数不符（应为 {3}）",
     "en": "The execution rate does not match the budget and the amount executed (should be {3})"},
    {"reason": "rule:weights_sum", "pattern": f"^(.+) {_NUM} but the rows add up to {_NUM}",
     "zh": "分值合计 {3}，与{1} {2} 不符", "en": "The weights add up to {3}, not the total {2}"},
    {"reason": "rule:scores_sum", "pattern": f"^(.+) {_NUM} but the rows add up to {_NUM}",
     "zh": "得分合计 {3}，与{1} {2} 不符", "en": "The scores add up to {3}, not the total {2}"},
    {"reason": "rule:rows_sum", "pattern": f"^(.+) {_NUM} but (.+) = {_NUM}",
     "zh": "{3} 合计 {4}，与{1} {2} 不符", "en": "{3} add up to {4}, not {1} {2}"},
    {"reason": "rule:subrow_unscored", "pattern": "^(.+) has a (.+); the form prints",
     "zh": "“{1}”这一行不应有{2}（表上印的是 —）", "en": "The “{1}” row has no {2} on the form (it prints —)"},
    {"reason": "rule:score_le_weight", "pattern": f"^得分 {_NUM} exceeds 分值 {_NUM}",
     "zh": "得分 {1} 超过分值 {2}", "en": "The score {1} is more than the weight {2}"},
    {"reason": "rule:score_le_weight", "pattern": f"^得分 {_NUM} has no 分值",
     "zh": "有得分 {1}，却没有分值", "en": "A score of {1} with no weight"},
    {"reason": "rule:label_in_value", "pattern": "the label (.+): two cells",
     "zh": "内容里有表头“{1}”：可能把两格读成了一格",
     "en": "The value contains the printed label “{1}”: two cells may have been read as one"},
    {"reason": "rule:marks_paired", "pattern": "",
     "zh": "引号或括号不成对：可能漏读或读错", "en": "A quotation mark or bracket has no partner"},
    {"reason": "rule:layout", "pattern": "",
     "zh": "表格结构存疑，请核对", "en": "The table's structure is in doubt: please check"},
    {"reason": "rule:layout_doubt", "pattern": "",
     "zh": "表格结构存疑，请核对", "en": "The table's structure is in doubt: please check"},
    {"reason": "rule:layout_failed", "pattern": "",
     "zh": "表格结构无法识别，请核对", "en": "The table's layout could not be read: please check"},
)
# Short names, for the queue's filter and its list of pages.
REASON_NAMES = {
    "low_confidence": ("识别把握不大", "uncertain reading"),
    "engines_disagree": ("两次识别不一致", "readings disagree"),
    "missing": ("未读到", "not read"),
    "unparseable": ("不是数字", "not a number"),
    "rule:execution_rate": ("执行率不符", "execution rate"),
    "rule:weights_sum": ("分值合计不符", "weights sum"),
    "rule:scores_sum": ("得分合计不符", "scores sum"),
    "rule:rows_sum": ("分项合计不符", "rows sum"),
    "rule:subrow_unscored": ("分项行有分值", "sub-row scored"),
    "rule:score_le_weight": ("得分超过分值", "score over weight"),
    "rule:label_in_value": ("内容含表头", "label in value"),
    "rule:marks_paired": ("符号不成对", "unpaired marks"),
    "rule:layout": ("表格结构存疑", "layout in doubt"),
    "rule:layout_doubt": ("表格结构存疑", "layout in doubt"),
    "rule:layout_failed": ("表格结构无法识别", "layout failed"),
}
STATUS_NAMES = {
    "needs_review": ("待核对", "needs review"),
    "audit": ("抽查", "audit"),
    "corrected": ("已更正", "corrected"),
    "auto_accepted": ("自动通过", "auto-accepted"),
    "rejected": ("已退回", "rejected"),
    "error": ("出错", "error"),
}


def _fill(text: str, groups: tuple[str, ...]) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: groups[int(m[1]) - 1] if int(m[1]) <= len(groups) else "", text)


def reason_text(reason: str, message: str = "", lang: str = DEFAULT_LANG) -> str:
    """Why a field is flagged, in words: ``rule:execution_rate`` with its message ->
    执行率与预算、执行数不符（应为 99.55）. An unknown reason shows as it is, with its message."""
    lang = lang_of(lang)
    for entry in REASONS:
        if entry["reason"] != reason:
            continue
        found = re.search(entry["pattern"], message or "")
        if found:
            return _fill(entry[lang], found.groups())
    return f"{reason}: {message}" if message else reason


def reason_name(reason: str, lang: str = DEFAULT_LANG) -> str:
    """A reason's short name (for lists and filters)."""
    names = REASON_NAMES.get(reason)
    return names[lang_of(lang) == "en"] if names else reason


def status_name(status: str, lang: str = DEFAULT_LANG) -> str:
    names = STATUS_NAMES.get(status)
    return names[lang_of(lang) == "en"] if names else status


def reason_table(lang: str = DEFAULT_LANG) -> list[dict[str, str]]:
    """``REASONS`` in one language, for the browser: [{reason, pattern, text}]."""
    lang = lang_of(lang)
    return [{"reason": e["reason"], "pattern": e["pattern"], "text": e[lang]} for e in REASONS]


# --- the UI's own words --------------------------------------------------------------------------

UI: dict[str, dict[str, str]] = {
    "zh": {
        "lang_name": "中文", "other_lang": "en", "other_lang_name": "English", "html_lang": "zh-CN",
        "log_out": "退出", "queue": "待核对队列", "start": "开始核对 ⏎", "nothing_waits": "没有待核对的页面了。",
        "audit_line": "抽查：{sampled} 页（共 {total} 页直接通过的页面）送去核对，已查 {checked} 页，",
        "audit_rate": "其中 {wrong} 页有错（自动通过页面的实测错误率：{rate} %）。",
        "audit_none": "尚无实测错误率。",
        "batches": "批次", "batch": "批次", "ingested": "导入时间", "pages_left": "待核对页", "fields_left": "待核对处",
        "layout_failed": "表格结构无法识别的页", "not_a_form": "不是表格的页", "finished": "已完成",
        "all": "全部", "total": "合计", "pages": "页面", "file": "文件", "page": "页", "status": "状态",
        "open_flags": "待核对处", "reasons": "原因", "any": "任意", "filter": "筛选",
        "search": "搜索", "search_placeholder": "文件名、主管部门、实施单位或项目名称",
        "search_results": "搜索“{q}”：{n} 页", "clear_search": "清除", "no_pages": "没有符合条件的页面。",
        "project": "项目名称 / 单位", "left_in_all": "共剩 {pages} 页、{fields} 处待核对",
        "eta": "按最近的速度（最近 {n} 次保存，平均每次 {sec} 秒）约需 {time}。",
        "eta_none": "还没有保存记录，无法估计剩余时间。", "minutes": "{n} 分钟", "hours": "{h} 小时 {m} 分钟",
        "batch_done": "“{name}”这一批已全部核对完毕。", "next_batch": "下一批：{name}（还剩 {pages} 页）",
        "all_done": "所有批次都已核对完毕。",
        "page_n": "第 {n} 页", "version": "版本", "zoom_in": "放大", "zoom_out": "缩小", "zoom_fit": "适应宽度",
        "original": "原图", "no_image": "这一页没有图像。",
        "key_help": "⏎ 保存并到下一处 · Tab / ⇧Tab 下一处 / 上一处 · Alt+↓ / Alt+↑ 下一格 / 上一格 · "
                    "点击任一格可修改 · Ctrl+⏎ 保存多行文字 · Alt+A 采用建议值 · "
                    "Alt+S 整块确认（表格结构存疑时） · Alt+D 本页完成 · Alt+R 退回",
        "details": "详情 / details", "field_path": "字段", "confidence": "置信度", "readings": "识别结果",
        "evidence": "来源", "reason_codes": "原因代码", "proposal": "建议值", "accept": "（Alt+A 采用）",
        "unsaved": "未保存", "reject": "退回本页", "done": "本页完成",
        "reject_title": "退回这一页？", "reject_help": "退回的页面不作为记录导出。请写明原因：",
        "reject_confirm": "确认退回", "cancel": "取消", "undo": "撤销",
        "trail": "修改记录", "when": "时间", "who": "人员", "field": "字段", "from": "原值", "to": "新值",
        "notices": "提示", "flags_title": "待核对", "pick_field": "点击表中任一格，或按 Tab 到下一处待核对。",
        "confirm_section": "这一块与原图一致 (Alt+S)",
    },
    "en": {
        "lang_name": "English", "other_lang": "zh", "other_lang_name": "中文", "html_lang": "en",
        "log_out": "log out", "queue": "Review queue", "start": "Start reviewing ⏎",
        "nothing_waits": "Nothing waits for review.",
        "audit_line": "Audit sample: {sampled} of {total} straight-through pages sent to review, {checked} checked, ",
        "audit_rate": "{wrong} had an error (measured error rate of auto-accepted pages: {rate} %).",
        "audit_none": "no error rate measured yet.",
        "batches": "Batches", "batch": "batch", "ingested": "ingested", "pages_left": "pages left",
        "fields_left": "fields left", "layout_failed": "forms whose layout failed", "not_a_form": "not a form",
        "finished": "finished", "all": "all", "total": "total", "pages": "Pages", "file": "file", "page": "page",
        "status": "status", "open_flags": "open flags", "reasons": "reasons", "any": "any", "filter": "filter",
        "search": "search", "search_placeholder": "file, department, implementing unit or project name",
        "search_results": "“{q}”: {n} page(s)", "clear_search": "clear", "no_pages": "No pages match.",
        "project": "project / unit", "left_in_all": "{pages} page(s) and {fields} field(s) left in all",
        "eta": "About {time} at the recent pace ({sec} s a save over the last {n} saves).",
        "eta_none": "No saves yet: no estimate of the time left.", "minutes": "{n} min", "hours": "{h} h {m} min",
        "batch_done": "Batch “{name}” is finished.", "next_batch": "Next batch: {name} ({pages} page(s) left)",
        "all_done": "Every batch is finished.",
        "page_n": "page {n}", "version": "version", "zoom_in": "zoom in", "zoom_out": "zoom out",
        "zoom_fit": "fit width", "original": "original image", "no_image": "No image for this page.",
        "key_help": "⏎ save & next · Tab / ⇧Tab next / previous flag · Alt+↓ / Alt+↑ next / previous field · "
                "click any field to edit · Ctrl+⏎ saves long text · Alt+A accept proposal · "
                "Alt+S confirm a section (layout in doubt) · Alt+D page done · Alt+R reject",
        "details": "详情 / details", "field_path": "field", "confidence": "confidence", "readings": "readings",
        "evidence": "evidence", "reason_codes": "reason codes", "proposal": "proposal", "accept": "(Alt+A)",
        "unsaved": "unsaved", "reject": "Reject page", "done": "Page done",
        "reject_title": "Reject this page?", "reject_help": "A rejected page is not exported as a record. Why?",
        "reject_confirm": "Reject", "cancel": "Cancel", "undo": "Undo",
        "trail": "Audit trail", "when": "when", "who": "who", "field": "field", "from": "from", "to": "to",
        "notices": "Notices", "flags_title": "To check", "pick_field": "Click any field, or Tab to the next flag.",
        "confirm_section": "This section matches the scan (Alt+S)",
    },
}

# What the page's script says, by language; {…} are filled in by the script.
SCRIPT_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "saved": "已保存 {label}。", "still_broken": "仍不符合：{list}。", "no_rule": "各项规则都已符合。",
        "left": "还有 {n} 处待核对。", "none_left": "没有待核对的字段了 —— 按 Alt+D 完成本页。",
        "conflict": "{who} 先改了{label}：现在是“{value}”，你的是“{yours}”。请选择保留哪一个：",
        "conflict_mine": "保存我的值“{value}”", "conflict_theirs": "采用对方的值“{value}”",
        "someone": "其他人", "drafts_left": "还有 {n} 处未保存的修改：请先保存。",
        "rejected": "本页已退回。", "reason_was": "原因：{reason}", "undone": "已撤销退回。",
        "need_reason": "请写明退回的原因。", "error": "出错了：{detail}",
        "flags_open": "还有 {n} 处待核对：逐一保存或确认后才能完成本页（或退回本页）。", "next_page": "下一页 →",
        "queue": "回到队列", "others": "{names} 也打开了这一页。", "draft_restored": "已恢复 {n} 处未保存的修改。",
        "proposal": "建议值", "accept": "（Alt+A 采用）", "section_confirmed": "已确认这一块的 {n} 处。",
        "page_changed": "这一页刚被别人改过，已刷新：请再操作一次。",
    },
    "en": {
        "saved": "Saved {label}.", "still_broken": "Rules still broken: {list}.", "no_rule": "No rule broken.",
        "left": "{n} flag(s) open.", "none_left": "No flags left — Alt+D marks the page done.",
        "conflict": "{who} changed {label} first: it is now “{value}”, yours is “{yours}”. Choose which to keep:",
        "conflict_mine": "Save mine “{value}”", "conflict_theirs": "Take theirs “{value}”",
        "someone": "someone", "drafts_left": "{n} unsaved change(s): save them first.",
        "rejected": "Page rejected.", "reason_was": "Reason: {reason}", "undone": "Reject undone.",
        "need_reason": "Say why the page is rejected.", "error": "Error: {detail}",
        "flags_open": "{n} field(s) still to check: save or confirm each before the page is done (or reject it).", "next_page": "Next page →",
        "queue": "Back to the queue", "others": "{names} also has this page open.",
        "draft_restored": "{n} unsaved change(s) restored.", "proposal": "proposal", "accept": "(Alt+A)",
        "section_confirmed": "{n} field(s) of this section confirmed.",
        "page_changed": "Someone changed this page just now; it is shown as it is: please do that again.",
    },
}


def ui_text(lang: str = DEFAULT_LANG) -> dict[str, str]:
    return UI[lang_of(lang)]


def script_text(lang: str = DEFAULT_LANG) -> dict[str, str]:
    return SCRIPT_TEXT[lang_of(lang)]
