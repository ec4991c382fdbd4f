"""One page end to end: upright -> deskew -> grid -> seal erased -> cells read -> record -> flags.

``extract_document`` yields one ``PageResult`` per page and never raises for a
bad page or file: the error becomes the result, so a batch always goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models import FormRecord, PageError, PageResult, PageStatus, SourceRef, TemplateRecord
from pipeline.assemble import (
    AssembledPage, FieldEvidence, assemble_record, find_label, form_vocabulary, identifying_score, read_year,
)
from pipeline.cell_image import prepare_cell
from pipeline.deskew import deskew, detect_orientation, rotate_upright
from pipeline.blank import is_blank
from pipeline.errors import (
    BlankPageError, DuplicateFileError, FormscanError, NoTableError, NotAFormError, TooManyPagesError,
)
from pipeline.identify import shown_form
from pipeline.grid import Box, Cell, Grid, detect_grid
from pipeline.lexicon import Lexicon
from pipeline.memory import release_freed_memory
from pipeline.numbers import printed_as
from pipeline.ocr import CellReader, CellText, comparable
from pipeline.regrid import split_hidden_rules, split_rows_cut_beside, suspects
from pipeline.read import MAX_PIXELS, Page, count_pages, file_sha256, list_documents, read_pages
from pipeline.seal import Seal, erase_seals, find_seals
from pipeline.templates import PROJECT_TEMPLATE, FieldPart, Template, all_templates, get_template
from pipeline.validate import confirmed_by_rules, layout_doubt, record_notices, validate


def read_header(page_image, top: int, dpi: int, reader: CellReader) -> str:
    """The text above the table (title and 年度): only the year is taken from it.

    Tesseract first: PP-OCR on the whole header band costs ~0.3-0.8 s, a tenth of the
    page, and is needed only when Tesseract's reading shows no year.
    """
    region = prepare_cell(page_image, Box(0, 0, page_image.shape[1], max(0, top)), dpi)
    if region.kind != "text":
        return ""
    text = reader.tesseract.read(region).text
    return text if read_year(text) is not None else reader.paddle.read(region).text


def _number_kind(template: Template, path: str) -> str:
    return template.number_grammar(path) or "score"


def matching_templates(templates: Sequence[Template], grid: Grid, texts: dict[Cell, CellText]) -> list[Template]:
    """The templates whose identifying labels are all among the cells, best shown first
    (the mean similarity of their labels to the cells; earlier templates win a tie)."""
    found = [t for t in templates if not any(find_label(grid, texts, label) is None for label in t.identify)]
    return sorted(found, key=lambda t: -identifying_score(t, grid, texts))


def read_cells(
    image: np.ndarray,
    dpi: int,
    grid: Grid,
    header: str,
    reader: CellReader,
    lexicon: Lexicon | None = None,
    templates: Sequence[Template] | None = None,
    *,
    ruled: np.ndarray | None = None,
) -> tuple[Template, Grid, dict[Cell, CellText]]:
    """The page's template, its grid and every cell's text, PP-OCR asked only where Tesseract's
    reading is not already vouched for.

    Cells whose first reading shows what two cells print (two labels, two number groups, a
    label and its value) are searched for the rule the grid missed (``pipeline.regrid``); the
    grid returned has the rules found there, and the cells they cut are read anew. ``ruled``:
    the page before its seals were erased, where the grid was found (``split_hidden_rules``).

    Tesseract reads every cell first (~14 ms a cell). Its readings settle a cell when they
    are exactly a word of the form, or when the form's arithmetic holds over them (the
    执行率 equation, the 分值 and 得分 sums: a misread digit would break it) and each is
    printed as the form prints such a number. Only the other cells get PP-OCR's second
    opinion (~50 ms a cell).

    With several ``templates`` (default: the project form's alone), the first readings say
    which form the page is: the best match of ``matching_templates``, or the first template when
    none matches (its assembler then says why the page is no form). A cell settled as a
    word of another template's vocabulary is read again against the chosen one's, so a
    page is read exactly as it would be with its template alone.
    """
    templates = list(templates or [get_template()])
    vocabularies = {t.name: form_vocabulary(page_lexicon(lexicon, t), t) for t in templates}
    vocabulary = frozenset().union(*vocabularies.values())
    grid = split_rows_cut_beside(image, grid)
    cells = {cell: prepare_cell(image, cell.box, dpi) for cell in grid.cells}
    first = {cell: reader.first_reading(cell_image, vocabulary) for cell, cell_image in cells.items()}
    template = templates[0]
    if len(templates) > 1:
        template = (matching_templates(templates, grid, first) or templates)[0]
        own = vocabularies[template.name]
        first.update({
            cell: reader.first_reading(cells[cell], own) for cell, text in first.items()
            if text.source == "vocabulary" and comparable(text.text) not in own
        })
    refined = split_hidden_rules(image, grid, suspects({c: t.text for c, t in first.items()}, template), ruled)
    if refined is not None:
        # only the cells the new rules cut are cut out and read again
        read = {cell.box: (cells[cell], text) for cell, text in first.items()}
        grid = refined
        cells = {cell: read[cell.box][0] if cell.box in read else prepare_cell(image, cell.box, dpi) for cell in grid.cells}
        own = vocabularies[template.name]
        first = {cell: read[cell.box][1] if cell.box in read else reader.first_reading(cells[cell], own)
                 for cell in grid.cells}
    try:
        draft = assemble_record(grid, first, header, page_lexicon(lexicon, template), template)
    except FormscanError:
        settled: set[Cell] = set()  # Tesseract alone could not even find the labels
    else:
        settled = {
            draft.evidence[path].cell for path in confirmed_by_rules(draft.record, template)
            if path in draft.evidence and printed_as(_number_kind(template, path), draft.evidence[path].text.text)
        }
    asked = [cell for cell in cells if cell not in settled]
    second = reader.second_opinions([(cells[cell], first[cell]) for cell in asked])
    return template, grid, {**first, **dict(zip(asked, second))}


READ_ACROSS_CUT = "a rule was found in the value's text: read again across it"


def read_across_cuts(
    image: np.ndarray, dpi: int, grid: Grid, texts: dict[Cell, CellText], cuts: Iterable[tuple[Cell, ...]],
    reader: CellReader, vocabulary: frozenset[str],
) -> tuple[Grid, dict[Cell, CellText]]:
    """``grid`` with each run of cells a value was cut into (a glyph's stroke taken for a rule:
    河道水质达|标率) made one cell, and that cell read anew: joining the pieces' readings keeps
    what the cut took (the stroke itself, erased as a rule: 标 read as 示)."""
    merged, new_texts = {}, dict(texts)
    for pieces in cuts:
        first, last = pieces[0], pieces[-1]
        box = Box(first.box.x0, min(c.box.y0 for c in pieces), last.box.x1, max(c.box.y1 for c in pieces))
        cell = Cell(first.row, first.col, first.row_span, last.col + last.col_span - first.col, box)
        merged.update((piece, cell) for piece in pieces)
        new_texts[cell] = reader.read(prepare_cell(image, box, dpi), vocabulary)
        for piece in pieces:
            new_texts.pop(piece, None)
    cells = tuple(dict.fromkeys(merged.get(c, c) for c in grid.cells))
    return replace(grid, cells=cells), new_texts


def reread_under_seal(
    stamped: np.ndarray,
    touched: set[Cell],
    dpi: int,
    seals: list[Seal],
    grid: Grid,
    texts: dict[Cell, CellText],
    header: str,
    reader: CellReader,
    lexicon: Lexicon,
    template: Template,
    assembled: AssembledPage,
) -> dict[Cell, CellText]:
    """``texts`` with the numbers under a grey seal read again where that makes the arithmetic hold
    (``texts`` itself when no reading changed). ``touched``: the cells the erasure changed.

    A grey seal is erased by level, and faint print's thin strokes under it are as light as
    the seal: 465.56 came out 105.56. A number whose cell the erasure touched, and which the
    form's arithmetic does not confirm, is read again from the page erased gently (only ink
    as light as the seal's typical grey goes). The new reading is kept only where the
    arithmetic then holds over it (for an amount too large for the 执行率 equation to pin, only
    where the equation failed even roughly before and both engines read the new one alike), so
    the seal's darker ink left behind cannot slip in.
    """
    confirmed = confirmed_by_rules(assembled.record, template)
    doubtful = {
        ev.cell for path, ev in assembled.evidence.items()
        if path not in confirmed and template.number_grammar(path) and not ev.text.is_blank
        and ev.cell in touched
    }
    if not doubtful:
        return texts
    gentle = erase_seals(stamped, dpi, gentle=True, seals=seals, grids=[grid])
    again = {cell: reader.read(prepare_cell(gentle, cell.box, dpi)) for cell in doubtful}
    trial = assemble_record(grid, {**texts, **again}, header, lexicon, template)
    holds = confirmed_by_rules(trial.record, template)
    # An amount too large for the 执行率 equation to pin its last digits is taken anew only where
    # the equation did not hold over the old reading even roughly (430000 cut to 130000, cali-362),
    # does over the new, and both engines read the new alike. A reading that already held roughly
    # stays: the seal's ink the gentle erasure leaves can turn a last 3 into an 8 for both engines
    # (509855.53, deve-040), and the equation cannot tell.
    holds_roughly = confirmed_by_rules(trial.record, template, any_amount=True) - confirmed_by_rules(
        assembled.record, template, any_amount=True
    )
    paths_of: dict[Cell, list[str]] = {}
    for path, ev in trial.evidence.items():
        paths_of.setdefault(ev.cell, []).append(path)
    kept = {
        cell for cell, text in again.items()
        if paths_of.get(cell)
        and all(
            (path in holds or (path in holds_roughly and text.source == "agreed"))
            and printed_as(_number_kind(template, path), text.text)
            for path in paths_of[cell]
        )
    }
    return {**texts, **{cell: again[cell] for cell in kept}} if kept else texts


def cells_changed(before: np.ndarray, after: np.ndarray, grid: Grid) -> set[Cell]:
    """The cells whose pixels differ between two versions of the page (a seal's erasure)."""
    return {
        cell for cell in grid.cells
        if (before[cell.box.y0 : cell.box.y1, cell.box.x0 : cell.box.x1]
            != after[cell.box.y0 : cell.box.y1, cell.box.x0 : cell.box.x1]).any()
    }


def page_lexicon(lexicon: Lexicon | None, template: Template) -> Lexicon:
    """The caller's lexicon for the project form (the review queue's, taught by reviewers);
    another form's own vocabulary with the caller's taught terms added."""
    if template.name == PROJECT_TEMPLATE:
        return lexicon or Lexicon.builtin()
    own = Lexicon.builtin(template)
    builtin = Lexicon.builtin()
    for kind, terms in (lexicon.terms if lexicon else {}).items():
        own.add(kind, set(terms) - builtin.terms.get(kind, set()))
    return own


@dataclass
class PageExtraction:
    """Everything known about one page: the result, and the evidence a reviewer needs."""

    result: PageResult
    image: np.ndarray | None = None  # the upright, deskewed page the cells were cut from
    grid: Grid | None = None
    cells: dict[Cell, CellText] = field(default_factory=dict)
    evidence: dict[str, FieldEvidence] = field(default_factory=dict)  # field path -> cell, readings
    layout_doubt: str | None = None  # why the table's structure is in doubt (every field then flagged)
    under_seal: set[str] = field(default_factory=set)  # fields whose cell a grey seal's erasure changed


def extract_page_full(
    page: Page, reader: CellReader, lexicon: Lexicon | None = None, templates: Sequence[Template] | None = None
) -> PageExtraction:
    """``lexicon``: the terms near-miss readings snap to; the form's built-in vocabulary if None.
    ``templates``: the forms the page may be (see ``read_cells``); the project form's alone if None.

    The memory each step freed goes back to the system before the next big one and before it returns
    (``pipeline.memory``): every caller reads page after page in a long-lived worker, and at 300 dpi
    what glibc kept from one step added to the next step's own peak took a worker over 600 MB."""
    try:
        return _extract_page_full(page, reader, lexicon, templates)
    finally:
        release_freed_memory()


def _extract_page_full(
    page: Page, reader: CellReader, lexicon: Lexicon | None, templates: Sequence[Template] | None
) -> PageExtraction:
    source = SourceRef(file=page.source, page=page.number)
    try:
        if is_blank(page.image):
            raise BlankPageError("the page is blank")
        upright = rotate_upright(page.image, detect_orientation(page.image))
        image, _angle = deskew(upright)
        release_freed_memory()  # the page's rendering and the copies turned upright and deskewed
        try:
            grid = detect_grid(image)
        except NoTableError:
            shown = form_without_table(page, image, reader, templates)
            if shown is None:
                raise
            return shown
        # Cells are read with the seal's ink erased: mid-grey on grey scans, a faint ghost in
        # the red channel of colour ones. The grid is found before: erasing can thin a faded rule.
        seals = find_seals(image, page.dpi)
        stamped, image = image, erase_seals(image, page.dpi, ghost=page.was_colour, seals=seals, grids=[grid])
        release_freed_memory()  # the grid's page-sized masks, before the engines' buffers
        header = read_header(image, grid.row_edges[0], page.dpi, reader)
        template, grid, texts = read_cells(image, page.dpi, grid, header, reader, lexicon, templates, ruled=stamped)
        lexicon = page_lexicon(lexicon, template)
        assembled = assemble_record(grid, texts, header, lexicon, template)
        if _layout_in_doubt(assembled):
            # Rules faded all through can leave a grid that maps badly without a block merged
            # both ways: the faint pass's grid is read too, and the better mapped one kept.
            try:
                faint = detect_grid(stamped, faint=True)
            except NoTableError:
                faint = grid
            if faint.cells != grid.cells:
                _, faint, faint_texts = read_cells(
                    image, page.dpi, faint, header, reader, lexicon, [template], ruled=stamped
                )
                other = assemble_record(faint, faint_texts, header, lexicon, template)
                if _mapping_doubt(other) < _mapping_doubt(assembled):
                    grid, texts, assembled = faint, faint_texts, other
        cut = assembled.cut_values
        if cut:
            grid, texts = read_across_cuts(image, page.dpi, grid, texts, cut.values(), reader,
                                           form_vocabulary(lexicon, template))
            assembled = assemble_record(grid, texts, header, lexicon, template)
            assembled.misaligned.update((path, READ_ACROSS_CUT) for path in cut)
        if assembled.layout_failed:
            require_form_shown(template, header, [text.text for text in texts.values()], assembled.layout_failed)
        if seals and not page.was_colour:
            touched = cells_changed(stamped, image, grid)
            reread = reread_under_seal(
                stamped, touched, page.dpi, seals, grid, texts, header, reader, lexicon, template, assembled
            )
            if reread is not texts:
                texts, assembled = reread, assemble_record(grid, reread, header, lexicon, template)
            assembled.under_seal = {path for path, ev in assembled.evidence.items() if ev.cell in touched}
    except FormscanError as exc:
        if exc.file is None:
            exc.file, exc.page = page.source, page.number
        return PageExtraction(PageResult(source=source, error=PageError(kind=exc.kind, message=exc.detail)))
    result = judge(source, assembled, lexicon)
    return PageExtraction(
        result, image, grid, texts, assembled.evidence, layout_doubt(assembled, result.flags), assembled.under_seal
    )


def _layout_in_doubt(page: AssembledPage) -> bool:
    return bool(page.layout_failed or page.unmapped or page.misaligned)


def _mapping_doubt(page: AssembledPage) -> tuple[bool, int, int]:
    """How badly a page's layout was mapped, for comparing two grids of it: smaller is better."""
    return bool(page.layout_failed), len(page.unmapped) + len(page.misaligned), -len(page.evidence)


def require_form_shown(template: Template, header: str, cell_texts: list[str], why: str) -> None:
    """Raise NotAFormError unless the page shows ``template``'s form (its title or most of its
    words) better than any other known form: a page whose layout failed is still that form."""
    shown = shown_form(all_templates(), header, cell_texts)
    if shown is None or shown.template != template.name:
        other = f"; it shows the {get_template(shown.template).title}" if shown is not None else ""
        raise NotAFormError(f"{why}, and neither the title nor most labels of the {template.title} are printed{other}")


def unmapped_form(template: Template, header: str, why: str) -> AssembledPage:
    """The record of a page known to be ``template``'s form where no part could be mapped."""
    year = read_year(header)
    record = FormRecord(year=year) if template.record == "project" else TemplateRecord(
        form_type=template.form_type, year=year)
    assembled = AssembledPage(record, layout_failed=why)
    assembled.unmapped = {
        part.name: why for part in template.parts if not (isinstance(part, FieldPart) and part.place == "unit_in")
    }
    return assembled


HEADER_SHARE = 0.3  # without a table, the title is looked for in the page's top third


def form_without_table(
    page: Page, image: np.ndarray, reader: CellReader, templates: Sequence[Template] | None
) -> PageExtraction | None:
    """A flagged, empty record when a page without a ruled table still shows a form's title;
    None when it shows none (the caller reports no table)."""
    header = read_header(image, round(image.shape[0] * HEADER_SHARE), page.dpi, reader)
    shown = shown_form(list(templates or [get_template()]), header, [])
    if shown is None:
        return None
    template = get_template(shown.template)
    assembled = unmapped_form(template, header, "no ruled table was found: the table's layout was not recognised")
    result = judge(SourceRef(file=page.source, page=page.number), assembled, page_lexicon(None, template))
    return PageExtraction(result, image, layout_doubt=assembled.layout_failed)


def judge(source: SourceRef, assembled: AssembledPage, lexicon: Lexicon | None = None) -> PageResult:
    """The page's result: its record, its flags, and whether a human must look."""
    flags = validate(assembled, lexicon)
    status = PageStatus.NEEDS_REVIEW if flags else PageStatus.AUTO_ACCEPTED
    return PageResult(source=source, record=assembled.record, flags=flags,
                      notices=record_notices(assembled.record), status=status)


def extract_page(
    page: Page, reader: CellReader, lexicon: Lexicon | None = None, templates: Sequence[Template] | None = None
) -> PageResult:
    return extract_page_full(page, reader, lexicon, templates).result


def error_result(exc: FormscanError, file: str, page: int | None = None) -> PageResult:
    return PageResult(
        source=SourceRef(file=file, page=exc.page if exc.page is not None else page),
        error=PageError(kind=exc.kind, message=exc.detail),
    )


def extract_document(
    path: str | Path,
    reader: CellReader,
    numbers: list[int] | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    templates: Sequence[Template] | None = None,
) -> Iterator[PageResult]:
    """Results for the pages of one file (all, or the 1-based ``numbers``); errors become results."""
    try:
        for page in read_pages(path, numbers, max_pixels=max_pixels):
            yield extract_page(page, reader, templates=templates)
    except FormscanError as exc:
        yield error_result(exc, str(path), numbers[0] if numbers and len(numbers) == 1 else None)


def plan_pages(
    paths: list[str | Path], *, max_pages_per_file: int | None = None, max_pixels: int = MAX_PIXELS
) -> tuple[list[tuple[str, int]], list[PageResult]]:
    """Every (file, page) to read in the given files and folders, and error results for the
    files that cannot even be opened, that have more than ``max_pages_per_file`` pages, or
    whose bytes (sha256) were already listed under another name; nothing is rendered yet."""
    pages: list[tuple[str, int]] = []
    failed: list[PageResult] = []
    first_by_digest: dict[str, str] = {}
    for path in list_documents(list(paths)):
        try:
            count = count_pages(path, max_pixels=max_pixels)
            if max_pages_per_file and count > max_pages_per_file:
                raise TooManyPagesError(
                    f"{count} pages, more than the limit of {max_pages_per_file} (--max-pages-per-file); "
                    "no page of it was read",
                    file=str(path),
                )
            digest = file_sha256(path)
            if digest in first_by_digest:
                raise DuplicateFileError(
                    f"the same bytes as {first_by_digest[digest]} (sha256 {digest[:16]}…), which is read instead",
                    file=str(path),
                )
            first_by_digest[digest] = str(path)
        except FormscanError as exc:
            failed.append(error_result(exc, str(path)))
            continue
        pages.extend((str(path), number) for number in range(1, count + 1))
    return pages, failed
