"""The record of one 财政项目支出绩效自评表 page.

Field names and types are fixed: code outside the project reads them.
Text is as printed (full-width brackets kept) without wrap-induced breaks;
"—" and blank cells are ``None`` for numbers and ``""`` for text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORM_TYPE = "project_performance_self_evaluation"

FundSource = Literal["年度资金总额", "当年财政拨款", "上年结转资金", "其他资金"]
FUND_SOURCES: tuple[str, ...] = ("年度资金总额", "当年财政拨款", "上年结转资金", "其他资金")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundsRow(_Strict):
    """One row of the 项目资金 block; amounts in the form's ``funds_unit`` as printed."""

    source: FundSource
    initial_budget: float | None = None  # 年初预算数
    annual_budget: float | None = None  # 全年预算数
    executed: float | None = None  # 全年执行数
    weight: float | None = None  # 分值
    execution_rate: float | None = None  # 执行率, percent: 99.55 means 99.55 %
    score: float | None = None  # 得分


class IndicatorRow(_Strict):
    """One 绩效指标 row with a non-empty 三级指标, in printed order."""

    level1: str  # 一级指标
    level2: str  # 二级指标
    name: str  # 三级指标
    target: str = ""  # 年度指标值
    actual: str = ""  # 实际完成值
    weight: float | None = None  # 分值
    score: float | None = None  # 得分
    deviation_reason: str = ""  # 偏差原因分析及改进措施


class FormRecord(_Strict):
    form_type: Literal["project_performance_self_evaluation"] = FORM_TYPE
    year: int | None = None
    project_name: str = ""
    department: str = ""  # 主管部门
    implementing_unit: str = ""  # 实施单位
    funds_unit: str = "万元"
    funds: list[FundsRow] = Field(default_factory=list)
    goal_expected: str = ""  # 年度总体目标 / 预期目标
    goal_actual: str = ""  # 年度总体目标 / 实际完成情况
    indicators: list[IndicatorRow] = Field(default_factory=list)
    total_weight: float | None = None
    total_score: float | None = None


class TemplateRecord(BaseModel):
    """The record of a form read by a template other than the project form's
    (``pipeline/templates/*.toml``): its header fields and, per section, a list of rows,
    each under the names the template gives them. Numbers as for ``FormRecord``.
    """

    model_config = ConfigDict(extra="allow")

    form_type: str
    year: int | None = None


def record_kind(value: object) -> str:
    """Which record model a record (or its JSON) is: ``project`` or ``template``."""
    form_type = value.get("form_type", FORM_TYPE) if isinstance(value, dict) else getattr(value, "form_type", FORM_TYPE)
    return "project" if form_type == FORM_TYPE else "template"
