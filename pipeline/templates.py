"""Form templates: which printed labels map to which record fields, declared in TOML.

A template (``pipeline/templates/<name>.toml``) says which labels identify its form,
where each header field's value sits relative to its label, which tables of rows the
form holds (their column headers and number grammars), its fixed vocabulary and the
named rules of ``pipeline.validate`` that apply, with their parameters. Adding a form
is writing such a file; ``pipeline.assemble`` and ``pipeline.validate`` read it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pipeline.errors import TemplateError

TEMPLATES_DIR = Path(__file__).with_name("templates")
PROJECT_TEMPLATE = "project_self_evaluation"
NUMBER_GRAMMARS = ("amount", "rate", "score")  # pipeline.numbers.PRINTED
FIELD_PLACES = ("right_of", "below", "unit_in", "total_of")


@dataclass(frozen=True)
class Column:
    field: str
    header: str
    number: str | None = None  # a grammar of NUMBER_GRAMMARS; None for text


@dataclass(frozen=True)
class Section:
    """Rows of a table under a header row, the header found by its ``anchor`` label.

    Rows are either labelled (``row_labels``: one row per printed label, in the column left
    of the anchor, its label stored as ``row_label``) or open (every row with text in the
    ``key`` column, up to the ``end`` label's row).
    """

    name: str
    anchor: str
    columns: tuple[Column, ...]
    row_label: str | None = None
    row_labels: tuple[str, ...] = ()
    key: str | None = None
    end: str | None = None
    stop_at: str | None = None
    skip_if_only: tuple[str, tuple[str, ...]] | None = None  # (column, the vocabulary's terms)

    @property
    def headers(self) -> dict[str, str]:
        return {c.field: c.header for c in self.columns}


@dataclass(frozen=True)
class FieldPart:
    """One header field: where its value sits (``place``, one of FIELD_PLACES) relative to ``label``."""

    name: str
    place: str
    label: str
    above: str | None = None
    else_right_of: str | None = None
    else_left_of: str | None = None  # below: a field found later whose value this one's is left of
    units: tuple[str, ...] = ()
    default: str = ""
    section: str | None = None  # total_of: the section whose end label's row holds the total
    column: str | None = None  # total_of: that section's column holding it
    number: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    form_type: str
    record: str  # "project": FormRecord; "generic": TemplateRecord
    identify: tuple[str, ...]
    labels: tuple[str, ...]
    vocabulary: dict[str, tuple[str, ...]]
    parts: tuple[FieldPart | Section, ...]
    rules: tuple[dict, ...]
    notices: tuple[dict, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def sections(self) -> dict[str, Section]:
        return {p.name: p for p in self.parts if isinstance(p, Section)}

    @property
    def fields(self) -> dict[str, FieldPart]:
        return {p.name: p for p in self.parts if isinstance(p, FieldPart)}

    def printed_words(self) -> tuple[str, ...]:
        """Every fixed word printed on the form: labels and column headers."""
        return (*self.labels, *(c.header for s in self.sections.values() for c in s.columns))

    def number_grammar(self, path: str) -> str | None:
        """``funds[0].execution_rate`` -> ``rate``; ``total_score`` -> ``score``; text -> None."""
        head, _, leaf = path.partition("].")
        if leaf:
            section = self.sections.get(head.split("[", 1)[0])
            column = next((c for c in section.columns if c.field == leaf), None) if section else None
            return column.number if column else None
        part = self.fields.get(path)
        return part.number if part else None


def _columns(raw: list, where: str) -> tuple[Column, ...]:
    columns = []
    for item in raw:
        column = Column(**item)
        if column.number is not None and column.number not in NUMBER_GRAMMARS:
            raise TemplateError(f"{where}: number = {column.number!r}, not one of {', '.join(NUMBER_GRAMMARS)}")
        columns.append(column)
    return tuple(columns)


def _part(raw: dict, sections: dict[str, Section], vocabulary: dict[str, tuple[str, ...]], where: str):
    if "section" in raw:
        raw = dict(raw)
        name = raw.pop("section")
        only = raw.pop("skip_if_only", None)
        if only is not None:
            raw["skip_if_only"] = (only["column"], vocabulary.get(only["vocabulary"], ()))
        section = Section(
            name=name, anchor=raw.pop("anchor"), columns=_columns(raw.pop("columns"), f"{where} {name}"),
            row_labels=tuple(raw.pop("row_labels", ())), **raw,
        )
        if (section.key is None) == (not section.row_labels):
            raise TemplateError(f"{where} {name}: give either row_labels (labelled rows) or key (open rows)")
        if section.key is not None and section.key not in section.headers:
            raise TemplateError(f"{where} {name}: key {section.key!r} is none of its columns")
        return section
    places = [p for p in FIELD_PLACES if p in raw]
    if "field" not in raw or len(places) != 1:
        raise TemplateError(f"{where}: a part is a section, or a field with one of {', '.join(FIELD_PLACES)}")
    place = places[0]
    number = None
    if place == "total_of":
        section = sections.get(raw[place])
        column = next((c for c in section.columns if c.field == raw.get("column")), None) if section else None
        if column is None:
            raise TemplateError(f"{where} {raw['field']}: total_of needs a section above it and one of its columns")
        number = column.number
    return FieldPart(
        name=raw["field"], place=place, label=raw[place] if place != "total_of" else sections[raw[place]].end or "",
        section=raw[place] if place == "total_of" else None, above=raw.get("above"),
        else_right_of=raw.get("else_right_of"), else_left_of=raw.get("else_left_of"), units=tuple(raw.get("units", ())),
        default=raw.get("default", ""), column=raw.get("column"), number=number,
    )


def parse_template(text: str, name: str, path: Path | None = None) -> Template:
    where = str(path or name)
    try:
        raw = tomllib.loads(text)
        vocabulary = {kind: tuple(terms) for kind, terms in raw.get("vocabulary", {}).items()}
        sections: dict[str, Section] = {}
        parts = []
        for item in raw.get("parts", ()):
            part = _part(item, sections, vocabulary, where)
            if isinstance(part, Section):
                sections[part.name] = part
            parts.append(part)
        template = Template(
            name=name, title=raw["title"], form_type=raw.get("form_type", name), record=raw.get("record", "generic"),
            identify=tuple(raw["identify"]), labels=tuple(raw.get("labels", ())),
            vocabulary=vocabulary,
            parts=tuple(parts), rules=tuple(raw.get("rules", ())), notices=tuple(raw.get("notices", ())), path=path,
        )
    except TemplateError:
        raise
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from exc
    if not template.identify:
        raise TemplateError(f"{where}: identify names no label")
    if template.record not in ("project", "generic"):
        raise TemplateError(f"{where}: record = {template.record!r}, not project (FormRecord) or generic (TemplateRecord)")
    return template


def load_template(path: str | Path) -> Template:
    path = Path(path)
    return parse_template(path.read_text(encoding="utf-8"), path.stem, path)


def template_names() -> list[str]:
    """The installed templates, the project form first (it wins a tie in detection)."""
    names = sorted(p.stem for p in TEMPLATES_DIR.glob("*.toml"))
    return sorted(names, key=lambda n: n != PROJECT_TEMPLATE)


@lru_cache(maxsize=None)
def get_template(name: str = PROJECT_TEMPLATE) -> Template:
    path = TEMPLATES_DIR / f"{name}.toml"
    if not path.is_file():
        raise TemplateError(f"no template {name!r}; installed: {', '.join(template_names())}")
    return load_template(path)


def all_templates() -> tuple[Template, ...]:
    return tuple(get_template(name) for name in template_names())


def template_for_form_type(form_type: str) -> Template:
    for template in all_templates():
        if template.form_type == form_type:
            return template
    raise TemplateError(f"no template has form_type {form_type!r}")
