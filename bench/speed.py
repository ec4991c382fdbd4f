"""Speed of formscan next to what users compare it with, measured side by side in one run (issue 6).

    .venv/bin/python -m bench.speed [FOLDER] [--pages 20] [--repeats 3] [--long 1000] [--long-pdf 1000] [--no-img2table]

FOLDER holds generated scans (default data/dev/scans; make it with
``python -m bench.eval_set --out data/dev --purpose development``) and its truth
JSONs are read from FOLDER/../truth when they are there. Every page is rendered
once (greyscale, at the dpi of its embedded scan, as formscan renders it) to a PNG
in a temporary folder, and the same images go to every contender:

1. ``formscan extract`` on the PDFs with ``--workers 1`` and ``--workers 2``
   (a subprocess each; its wall time, engine loads included);
2. the reference: ``tesseract page.png - -l chi_sim --psm 3`` per page with
   OMP_THREAD_LIMIT=1, one process per page as a user would run it;
3. img2table 2.x with Tesseract chi_sim at its best setting, in its own
   virtualenv (``bash bench/img2table_env.sh`` makes .venv-img2table): skipped,
   saying so, when that venv is absent.

Each repeat runs every contender once, in turn, so the load of a shared machine
falls on all of them alike; the figures are medians over the repeats. Then
formscan's stages are timed in this process on the same pages, by wrapping the
stage functions ``pipeline.extract.extract_page_full`` calls and the read methods
of both engines; ``--long N`` feeds the page images round and round through the
same in-process pipeline for N pages and reports how its RSS grew; ``--long-pdf N``
joins the documents round and round into one N-page PDF, reads it with
``formscan extract --workers 2`` as a user would, and reports how the workers' RSS
grew from the second round of pages to the last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ocr import comparable  # NFKC, whitespace (line breaks too) removed

ROOT = Path(__file__).resolve().parent.parent
IMG2TABLE_VENV = ROOT / ".venv-img2table"
IMG2TABLE_WORKER = Path(__file__).resolve().parent / "img2table_worker.py"
SUBPROCESS_ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # Tesseract's OpenMP threads only fight each other
CLI_SUMMARY = re.compile(r"formscan: (\d+) pages in ([\d.]+) s")

# Contenders, as the rows of the output name them.
FORMSCAN_1 = "formscan extract, 1 worker"
FORMSCAN_2 = "formscan extract, 2 workers"
TESSERACT_PASS = "tesseract --psm 3, full page"
IMG2TABLE = "img2table 2.x + Tesseract, best setting"

# formscan's stages, in the order a page goes through them.
RENDER = "render (pdftoppm, grey)"
ORIENT = "blank check, orientation, deskew"
GRID = "grid"
SEAL = "seal erasure"
CELL_PREP = "cell prep"
OCR_TESSERACT = "OCR Tesseract"
OCR_PADDLE = "OCR PP-OCR (second opinion)"
ASSEMBLE = "assemble + validate"
STORE = "store (JSON line)"
OTHER = "other (reconcile, glue)"
STAGES = (RENDER, ORIENT, GRID, SEAL, CELL_PREP, OCR_TESSERACT, OCR_PADDLE, ASSEMBLE, STORE, OTHER)
# The functions extract_page_full calls, by their name in pipeline.extract, and the stage each belongs to.
EXTRACT_STAGE_FUNCTIONS = {
    "is_blank": ORIENT, "detect_orientation": ORIENT, "rotate_upright": ORIENT, "deskew": ORIENT,
    "detect_grid": GRID, "find_seals": SEAL, "erase_seals": SEAL, "prepare_cell": CELL_PREP,
    "form_vocabulary": ASSEMBLE, "assemble_record": ASSEMBLE, "judge": ASSEMBLE,
}

# The targets: (metric, target text, test on the measured value).
TARGETS = (
    ("formscan / Tesseract pass, per page (1 worker)", "<= 1.0", lambda v: v <= 1.0),
    ("formscan / img2table, per page (1 worker)", "<= 0.9", lambda v: v <= 0.9),
    ("2 workers vs 1 worker, throughput once running", ">= 1.8x", lambda v: v >= 1.8),
    ("pages per minute, 2 workers, once running", ">= 40", lambda v: v >= 40),
    ("peak RSS per worker, MB", "<= 600", lambda v: v <= 600),
    ("RSS growth over the long run, %", "<= 10", lambda v: v <= 10),
)


# --- the pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageImage:
    """One page rendered once, as every contender reads it."""

    document: Path
    number: int
    png: Path
    dpi: int
    was_colour: bool


def choose_documents(folder: Path, pages: int | None, dpi: tuple[int, int] | None = None) -> list[Path]:
    """The folder's documents in name order, whole, until they hold at least ``pages`` pages; with
    ``dpi`` (low, high), only PDFs every page of which is rendered at a dpi in that range."""
    from pipeline.read import count_pages, list_documents, pdf_page_dpis

    chosen, total = [], 0
    for path in list_documents([folder]):
        if pages is not None and total >= pages:
            break
        if dpi is not None:
            dpis = pdf_page_dpis(path) if path.suffix.lower() == ".pdf" else {}
            if not dpis or not all(dpi[0] <= d <= dpi[1] for d in dpis.values()):
                continue
        chosen.append(path)
        total += count_pages(path)
    return chosen


def dpi_range(text: str) -> tuple[int, int]:
    """``--dpi 200-300`` as (200, 300)."""
    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a dpi range like 200-300: {text!r}") from None
    if bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"the range {text!r} is empty")
    return bounds


def render_once(documents: list[Path], out: Path) -> list[PageImage]:
    """Each page as formscan renders it (pipeline.read.read_pages), saved as a greyscale PNG with its dpi."""
    from PIL import Image

    from pipeline.read import read_pages

    images = []
    for document in documents:
        for page in read_pages(document):
            png = out / f"{document.stem}-p{page.number}.png"
            Image.fromarray(page.image).save(png, dpi=(page.dpi, page.dpi))
            images.append(PageImage(document, page.number, png, page.dpi, page.was_colour))
    return images


def load_page(image: PageImage):
    """The rendered page back as a pipeline Page, without rendering the PDF again."""
    import numpy as np
    from PIL import Image

    from pipeline.read import Page

    with Image.open(image.png) as png:
        return Page(str(image.document), image.number, np.asarray(png.convert("L")), image.dpi, image.was_colour)


# --- running a command and measuring it --------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_rss: int  # bytes: the largest single process of the command's tree (ru_maxrss is a maximum, not a sum)
    returncode: int
    line_times: tuple[float, ...] = ()  # when each line of its stdout came, seconds from the start


# Runs one command and writes its wall time, its rusage and when each line of its stdout came (seconds
# from the start) to argv[1]. A process of its own, a few MB: Linux carries a parent's RSS high-water mark
# through fork and exec into the child's ru_maxrss, and this benchmark's own RSS (the engines are loaded
# here) would be every command's "peak".
LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
read_end, write_end = os.pipe()
actions = [(os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_CLOSE, read_end)]
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ, file_actions=actions)
os.close(write_end)
line_times = []
with os.fdopen(read_end, "rb") as lines:
    for line in lines:
        line_times.append(time.perf_counter() - start)
        sys.stdout.buffer.write(line)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as report:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status),
               "line_times": line_times}, report)
"""


def run_timed(command: list[str], stdout: Path, stderr: Path) -> Timed:
    """Wall time of ``command`` and peak RSS of the processes it waited for, measured by LAUNCHER."""
    report = stderr.with_suffix(".timed.json")
    with stdout.open("wb") as out, stderr.open("wb") as err:
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(report), *command], stdout=out, stderr=err,
                       env=SUBPROCESS_ENV, check=True)
    timed = json.loads(report.read_text())
    return Timed(timed["seconds"], timed["maxrss_kb"] * 1024, timed["status"], tuple(timed["line_times"]))


@dataclass
class ContenderRun:
    """One pass of a contender over all the pages."""

    seconds: float
    peak_rss: int
    pages: int
    note: str = ""
    steady_seconds_per_page: float | None = None  # once running: see ``steady_seconds_per_page``

    @property
    def seconds_per_page(self) -> float:
        return self.seconds / max(self.pages, 1)


def steady_seconds_per_page(page_times: tuple[float, ...], workers: int) -> float | None:
    """Seconds a page once every worker has finished its first page: the time from the ``workers``-th
    page's result to the last one's, over the pages between. It leaves out what a run pays once
    (starting Python, loading both engines, each worker's first page) and keeps the rest, the
    last pages' tail included; ``page_times`` are when each page's result came, in input order."""
    if len(page_times) <= workers:
        return None
    return (page_times[-1] - page_times[workers - 1]) / (len(page_times) - workers)


def run_formscan(documents: list[Path], pages: int, workers: int, work: Path) -> tuple[ContenderRun, Path]:
    out = work / f"formscan-w{workers}.jsonl"
    stderr = work / f"formscan-w{workers}.stderr"
    # Results on stdout, one line a page, so the launcher sees when each page came.
    command = [sys.executable, "-m", "formscan", "extract", *map(str, documents), "-o", "-",
               "--workers", str(workers)]
    timed = run_timed(command, out, stderr)
    text = stderr.read_text(encoding="utf-8", errors="replace")
    if timed.returncode != 0:
        raise RuntimeError(f"formscan extract --workers {workers} failed ({timed.returncode}): {text[-2000:]}")
    summary = CLI_SUMMARY.search(text)
    note = f"formscan's own summary: {summary.group(2)} s" if summary else ""
    steady = steady_seconds_per_page(timed.line_times, workers)
    if steady is not None:
        note += f"; {steady:.2f} s/page once running"
    return ContenderRun(timed.seconds, timed.peak_rss, pages, note, steady), out


def run_tesseract_pass(images: list[PageImage], work: Path) -> tuple[ContenderRun, dict[PageImage, str]]:
    seconds, peak, texts = 0.0, 0, {}
    for image in images:
        text_file = work / f"{image.png.stem}.tesseract.txt"
        timed = run_timed(["tesseract", str(image.png), "-", "-l", "chi_sim", "--psm", "3"],
                          text_file, work / "tesseract.stderr")
        if timed.returncode != 0:
            raise RuntimeError(f"tesseract failed on {image.png}: {(work / 'tesseract.stderr').read_text()[-2000:]}")
        seconds += timed.seconds
        peak = max(peak, timed.peak_rss)
        texts[image] = text_file.read_text(encoding="utf-8", errors="replace")
    return ContenderRun(seconds, peak, len(images)), texts


def img2table_python(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    return python if python.exists() else None


def run_img2table(images: list[PageImage], python: Path, work: Path) -> tuple[ContenderRun, dict[PageImage, list[str]]]:
    out = work / "img2table.json"
    timed = run_timed([str(python), str(IMG2TABLE_WORKER), str(out), *(str(i.png) for i in images)],
                      work / "img2table.stdout", work / "img2table.stderr")
    if timed.returncode != 0:
        raise RuntimeError(f"img2table worker failed: {(work / 'img2table.stderr').read_text()[-2000:]}")
    results = json.loads(out.read_text(encoding="utf-8"))
    found = sum(1 for r in results if r["tables"])
    errors = [r["error"] for r in results if r.get("error")]
    note = f"tables found on {found}/{len(images)} pages; extraction alone {sum(r['seconds'] for r in results):.1f} s"
    if errors:
        note += f"; img2table itself failed on {len(errors)} page(s), read as finding nothing ({errors[0][:120]})"
    return ContenderRun(timed.seconds, timed.peak_rss, len(images), note), {
        image: result["cells"] for image, result in zip(images, results)
    }


# --- formscan's stages, in this process ---------------------------------------------------------------


@dataclass
class StageClock:
    """Exclusive seconds per stage: a timed call inside another timed call counts only for itself."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _open: list[float] = field(default_factory=list)  # per open timed call: its timed callees' seconds

    def wrap(self, stage: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            self._open.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[stage] += elapsed - self._open.pop()
                if self._open:
                    self._open[-1] += elapsed

        return timed

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - start


@contextmanager
def stages_timed(clock: StageClock, reader) -> Iterator[list[str]]:
    """Wrap the stage functions of pipeline.extract and both engines' read methods; yields the names not found
    (their time then shows as "other": the pipeline has changed and EXTRACT_STAGE_FUNCTIONS should follow)."""
    import pipeline.extract as extract

    missing, originals = [], {}
    for name, stage in EXTRACT_STAGE_FUNCTIONS.items():
        if not callable(getattr(extract, name, None)):
            missing.append(f"pipeline.extract.{name}")
            continue
        originals[name] = getattr(extract, name)
        setattr(extract, name, clock.wrap(stage, originals[name]))
    wrapped = []  # (engine instance, method name): instance attributes that shadow the class's methods
    for engine, stage in ((reader.tesseract, OCR_TESSERACT), (reader.paddle, OCR_PADDLE)):
        for name in dir(type(engine)):
            if name.startswith("read") and callable(getattr(engine, name)):
                setattr(engine, name, clock.wrap(stage, getattr(engine, name)))
                wrapped.append((engine, name))
    try:
        yield missing
    finally:
        for name, function in originals.items():
            setattr(extract, name, function)
        for engine, name in wrapped:
            delattr(engine, name)


@dataclass
class StageRun:
    seconds_per_page: dict[str, float]  # every stage of STAGES, "other" being what no wrapper saw
    total_per_page: float
    cell_texts: dict[PageImage, set[str]]  # the pages' cell readings, comparable form
    missing: list[str]


def run_stages(images: list[PageImage], reader) -> StageRun:
    """formscan's pipeline on each page (rendered from its PDF again, to time the render), stage by stage."""
    from pipeline.extract import extract_page_full
    from pipeline.read import read_pages

    clock = StageClock()
    cell_texts = {}
    start = time.perf_counter()
    with stages_timed(clock, reader) as missing:
        for image in images:
            with clock.timing(RENDER):
                page = next(read_pages(image.document, [image.number]))
            extraction = extract_page_full(page, reader)
            with clock.timing(STORE):
                extraction.result.to_json_line()
            cell_texts[image] = {comparable(cell.text) for cell in extraction.cells.values() if cell.text}
    total = time.perf_counter() - start
    pages = max(len(images), 1)
    per_page = {stage: clock.seconds.get(stage, 0.0) / pages for stage in STAGES if stage != OTHER}
    per_page[OTHER] = max(0.0, total / pages - sum(per_page.values()))
    return StageRun(per_page, total / pages, cell_texts, missing)


def current_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


@dataclass(frozen=True)
class LongRun:
    pages: int
    warm_after: int  # the page after which RSS is the baseline: every page image has been read once
    rss_warm: int
    rss_last: int
    peak_rss: int

    @property
    def growth(self) -> float:
        return (self.rss_last - self.rss_warm) / self.rss_warm


def run_long(images: list[PageImage], reader, pages: int) -> LongRun:
    """The page images fed round and round through the pipeline in this process, one in memory at a time."""
    import resource

    from pipeline.extract import extract_page_full

    warm_after = min(len(images), pages)
    rss_warm = rss_last = 0
    for k in range(1, pages + 1):
        extract_page_full(load_page(images[(k - 1) % len(images)]), reader).result.to_json_line()
        rss_last = current_rss()
        if k == warm_after:
            rss_warm = rss_last
        if k % 100 == 0:
            print(f"speed: long run, page {k}/{pages}, RSS {rss_last / 2**20:.0f} MB", file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return LongRun(pages, warm_after, rss_warm, rss_last, peak)


@dataclass(frozen=True)
class LongPdfRun:
    """``formscan extract --workers 2`` over one long PDF, the workers' RSS sampled as it ran."""

    pages: int
    cycle: int  # pages of the chosen documents, joined round and round: one cycle reads each once
    seconds: float
    worker_rss_first: int  # the workers' highest RSS sampled over the second cycle (every page seen once)
    worker_rss_last: int  # ... over the last cycle
    worker_peak: int  # the highest of the workers' own peaks (VmHWM)
    main_rss_first: int  # the command's own process, the same windows
    main_rss_last: int

    @property
    def growth(self) -> float | None:
        """None when a round went by between two samples (a run too short to tell)."""
        if not self.worker_rss_first or not self.worker_rss_last:
            return None
        return (self.worker_rss_last - self.worker_rss_first) / self.worker_rss_first

    @property
    def pages_a_minute(self) -> float:
        """Over the whole run, start and tail included."""
        return self.pages * 60 / self.seconds


def join_into_one_pdf(documents: list[Path], pages: int, out: Path) -> tuple[int, int]:
    """The PDFs among ``documents`` joined round and round (pdfunite) into one PDF of at least ``pages``
    pages; returns (its pages, the pages of one round)."""
    from pipeline.read import count_pages

    pdfs = [(d, count_pages(d)) for d in documents if d.suffix.lower() == ".pdf"]
    cycle = sum(n for _, n in pdfs)
    if not cycle:
        raise ValueError("no PDF among the chosen documents to join")
    parts, total = [], 0
    while total < pages:
        for path, n in pdfs:
            parts.append(str(path))
            total += n
            if total >= pages:
                break
    subprocess.run(["pdfunite", *parts, str(out)], check=True, capture_output=True)
    return total, cycle


def _rss_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith(field + ":")), 0)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0


def run_long_pdf(documents: list[Path], pages: int, work: Path) -> LongPdfRun:
    """What a user's archive of one long PDF costs in memory: the documents joined into one PDF of
    ``pages`` pages, read by ``formscan extract --workers 2`` as a user runs it, each worker's RSS (and the
    command's own) sampled against the pages out so far."""
    pdf = work / "long.pdf"
    total, cycle = join_into_one_pdf(documents, pages, pdf)
    command = [sys.executable, "-m", "formscan", "extract", str(pdf), "-o", "-", "--workers", "2", "-q"]
    with (work / "long.stderr").open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=SUBPROCESS_ENV)
        samples, peaks, out = _sample_while_running(process, total)
        seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"formscan extract on the long PDF failed ({process.returncode}): "
                           f"{(work / 'long.stderr').read_text(errors='replace')[-2000:]}")
    if out != total:
        raise RuntimeError(f"formscan extract wrote {out} results for the long PDF's {total} pages")

    def highest(lo: int, hi: int, column: int) -> int:
        window = [s[column] for s in samples if lo < s[0] <= hi and s[column]]
        return max(window, default=0) * 1024

    first = (cycle, min(2 * cycle, total))
    last = (max(total - cycle, cycle), total - 1)  # samples while the last cycle's pages were being read
    return LongPdfRun(total, cycle, seconds, highest(*first, 1), highest(*last, 1), max(peaks.values(), default=0) * 1024,
                      highest(*first, 2), highest(*last, 2))


def _sample_while_running(
    process: subprocess.Popen, total: int, sample_every: float = 0.5
) -> tuple[list[tuple[int, int, int]], dict[int, int], int]:
    """Until ``process`` ends: samples of (pages out, its workers' highest RSS, its own RSS) in kB every
    ``sample_every`` s, each worker's peak (VmHWM) by pid, and the pages out (result lines on its stdout)."""
    import threading

    import psutil

    out = [0]

    def count_pages_out() -> None:
        for _line in process.stdout:
            out[0] += 1

    reader = threading.Thread(target=count_pages_out, daemon=True)
    reader.start()
    samples: list[tuple[int, int, int]] = []  # (pages out, the workers' highest RSS, the command's RSS), kB
    peaks: dict[int, int] = {}
    main = psutil.Process(process.pid)
    shown = 0
    while process.poll() is None:
        try:
            workers = [c.pid for c in main.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for pid in workers:
            peaks[pid] = max(peaks.get(pid, 0), _rss_kb(pid, "VmHWM"))
        samples.append((out[0], max((_rss_kb(pid, "VmRSS") for pid in workers), default=0),
                        _rss_kb(process.pid, "VmRSS")))
        if out[0] >= shown + 100:
            shown = out[0] // 100 * 100
            print(f"speed: long PDF, page {out[0]}/{total}, worker RSS {samples[-1][1] / 1024:.0f} MB", file=sys.stderr)
        time.sleep(sample_every)
    reader.join()
    process.wait()
    return samples, peaks, out[0]


def print_long_pdf_run(run: LongPdfRun) -> None:
    print()
    print(f"long PDF: {run.pages} pages in one PDF ({run.cycle} pages joined round and round), formscan extract "
          f"--workers 2 in {run.seconds:.0f} s ({run.pages_a_minute:.1f} pages a minute, start and tail "
          f"included); a worker's highest RSS over the second round "
          f"{run.worker_rss_first / 2**20:.0f} MB, over the last {run.worker_rss_last / 2**20:.0f} MB: growth "
          f"{'-' if run.growth is None else format(run.growth, '+.1%')}; a worker's peak {run.worker_peak / 2**20:.0f} MB; the command's own process "
          f"{run.main_rss_first / 2**20:.0f} MB, then {run.main_rss_last / 2**20:.0f} MB")


# --- accuracy, cheaply --------------------------------------------------------------------------------


def truth_cells(truth_dir: Path, images: list[PageImage]) -> dict[PageImage, list[str]]:
    """Per page, the printed text of every non-empty cell of its truth grid (lines kept apart by "\\n")."""
    by_page = {}
    for path in truth_dir.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for page in data["pages"]:
            by_page[(Path(data["file"]).name, page["page"])] = page
    cells = {}
    for image in images:
        page = by_page.get((image.document.name, image.number))
        if page is not None:
            cells[image] = [c["text"] for c in page["grid"]["cells"] if comparable(c["text"])]
    return cells


def share_in_page_text(truth: dict[PageImage, list[str]], texts: dict[PageImage, str], *, whole: bool) -> float | None:
    """Truth cell texts of which every printed line, compared, is inside one line of the page's text
    (``whole``: equal to one of its tokens, the text cut at whitespace and "|", Tesseract's cell borders).

    Inside a line, a short value ("7", "15") is often found by chance: that share is an upper bound."""
    found = total = 0
    for image, cells in truth.items():
        lines = texts.get(image, "").splitlines()
        if whole:
            tokens = {comparable(token) for line in lines for token in re.split(r"[\s|]+", line)}
        else:
            lines = [comparable(line) for line in lines]
        for cell in cells:
            parts = [part for part in map(comparable, cell.splitlines()) if part]
            total += 1
            found += all((part in tokens) if whole else any(part in line for line in lines) for part in parts)
    return found / total if total else None


def share_as_cells(truth: dict[PageImage, list[str]], cells: dict[PageImage, set[str] | list[str]]) -> float | None:
    """Truth cell texts equal, compared, to some cell text read on the same page."""
    found = total = 0
    for image, truth_texts in truth.items():
        read = {comparable(text) for text in cells.get(image, ())}
        total += len(truth_texts)
        found += sum(comparable(text) in read for text in truth_texts)
    return found / total if total else None


def formscan_field_accuracy(jsonl: Path, truth_dir: Path) -> float | None:
    from bench.accuracy import load_truth, score, summarise

    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    pages = score(lines, load_truth(truth_dir))
    return summarise(pages)["all"]["field_accuracy"] if pages else None


# --- the report ---------------------------------------------------------------------------------------


def median_run(runs: list[ContenderRun]) -> ContenderRun:
    """The median time, the highest peak RSS; the note shows every run (the spread says how loaded the machine was)."""
    seconds = statistics.median(r.seconds for r in runs)
    each = ", ".join(f"{r.seconds_per_page:.2f}" for r in runs)
    note = f"s/page of each run {each}" + (f"; last run: {runs[-1].note}" if runs[-1].note else "")
    steady = [r.steady_seconds_per_page for r in runs if r.steady_seconds_per_page is not None]
    return ContenderRun(seconds, max(r.peak_rss for r in runs), runs[0].pages, note,
                        statistics.median(steady) if steady else None)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@dataclass
class Measurements:
    """Everything the contenders' runs measured, medians over the repeats."""

    images: list[PageImage]
    repeats: int
    load_before: float
    load_after: float
    contenders: dict[str, ContenderRun]
    accuracy: dict[str, str]
    stages: dict[str, float]  # seconds per page
    stage_total: float
    engine_load: float
    missing: list[str]
    # Per contender, the share of truth cell texts it read right, as (lower, upper) bound: exact for
    # formscan and img2table (a cell equal to the truth's), bounds for Tesseract's page text (as a whole
    # token of it, or anywhere inside one of its lines). Empty without truth.
    right_cells: dict[str, tuple[float, float]] = field(default_factory=dict)


def measure(args: argparse.Namespace, img2table: Path | None, work: Path, reader, engine_load: float,
            documents: list[Path], images: list[PageImage]) -> Measurements:
    """Every contender once per repeat, in turn, then formscan's stages in this process; medians."""
    load_before = os.getloadavg()[0]
    runs: dict[str, list[ContenderRun]] = defaultdict(list)
    stage_runs: list[StageRun] = []
    first: dict[str, object] = {}  # each contender's output of the first repeat: what accuracy is scored on
    for repeat in range(1, args.repeats + 1):
        print(f"speed: run {repeat}/{args.repeats} over {len(images)} pages", file=sys.stderr)
        for workers, name in ((1, FORMSCAN_1), (2, FORMSCAN_2)):
            run, jsonl = run_formscan(documents, len(images), workers, work)
            runs[name].append(run)
            if name not in first:
                first[name] = jsonl.rename(work / f"first-{jsonl.name}")
        run, texts = run_tesseract_pass(images, work)
        runs[TESSERACT_PASS].append(run)
        first.setdefault(TESSERACT_PASS, texts)
        if img2table is not None:
            run, cells = run_img2table(images, img2table, work)
            runs[IMG2TABLE].append(run)
            first.setdefault(IMG2TABLE, cells)
        stage_runs.append(run_stages(images, reader))
    load_after = os.getloadavg()[0]

    accuracy = {}
    right_cells: dict[str, tuple[float, float]] = {}
    truth_dir = args.folder.parent / "truth"
    if truth_dir.is_dir():
        truth = truth_cells(truth_dir, images)
        fields = formscan_field_accuracy(first[FORMSCAN_1], truth_dir)
        cells = share_as_cells(truth, stage_runs[0].cell_texts)
        accuracy[FORMSCAN_1] = f"fields {percent(fields)}, cells {percent(cells)}"
        in_text, as_tokens = (share_in_page_text(truth, first[TESSERACT_PASS], whole=w) for w in (False, True))
        accuracy[TESSERACT_PASS] = f"cells in page text {percent(in_text)}, as tokens {percent(as_tokens)}"
        shares = {FORMSCAN_1: (cells, cells), TESSERACT_PASS: (as_tokens, in_text)}
        if IMG2TABLE in first:
            share = share_as_cells(truth, first[IMG2TABLE])
            accuracy[IMG2TABLE] = f"cells {percent(share)}"
            shares[IMG2TABLE] = (share, share)
        right_cells = {name: bounds for name, bounds in shares.items() if None not in bounds}
    return Measurements(
        images, args.repeats, load_before, load_after, {name: median_run(r) for name, r in runs.items()}, accuracy,
        {stage: statistics.median(r.seconds_per_page[stage] for r in stage_runs) for stage in STAGES},
        statistics.median(r.total_per_page for r in stage_runs), engine_load, stage_runs[0].missing, right_cells,
    )


def per_right_cell_ratios(
    contenders: dict[str, ContenderRun], right_cells: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """formscan (1 worker) against each other contender in seconds a page per share of cell texts read right,
    as (lower, upper) bounds: what the per-page ratios become when each is charged for what it gets right.
    Not a target of the speed issue; printed beside its targets so they can be read against accuracy."""
    ours, right = contenders.get(FORMSCAN_1), right_cells.get(FORMSCAN_1)
    if ours is None or right is None or not right[0]:
        return {}
    cost = ours.seconds_per_page / right[0]
    ratios = {}
    for name in (TESSERACT_PASS, IMG2TABLE):
        run, bounds = contenders.get(name), right_cells.get(name)
        if run is None or bounds is None or not bounds[0]:
            continue
        # A contender credited with more right cells costs less per right cell: its upper bound gives our upper.
        low, high = (cost / (run.seconds_per_page / share) for share in bounds)
        ratios[name] = (min(low, high), max(low, high))
    return ratios


def print_measurements(m: Measurements, folder: Path, skipped: list[str]) -> None:
    dpis = sorted({i.dpi for i in m.images})
    print(f"formscan speed benchmark: {len(m.images)} pages from {folder} ({dpis[0]}-{dpis[-1]} dpi), "
          f"medians of {m.repeats} run(s), {os.cpu_count()} cores, "
          f"load average {m.load_before:.1f} before, {m.load_after:.1f} after")
    print()
    # Peak RSS: the largest single process of the command (a formscan worker), highest over the runs.
    print(f"{'contender':<42}{'s/page':>8}{'pages/min':>11}{'peak RSS':>11}  accuracy (see below)")
    for name, run in m.contenders.items():
        print(f"{name:<42}{run.seconds_per_page:>8.2f}{60 / run.seconds_per_page:>11.1f}"
              f"{run.peak_rss / 2**20:>8.0f} MB  {m.accuracy.get(name, '')}")
    for line in skipped:
        print(line)
    for name, run in m.contenders.items():
        if run.note:
            print(f"  {name}: {run.note}")
    print("  accuracy: formscan: field accuracy (bench.accuracy) of the 1-worker output, and in the in-process run")
    print("  the share of truth cell texts equal to a cell it read; tesseract: the share of truth cell texts whose")
    print("  every line is inside one line of its page text (an upper bound: \"15\" is found in \"2015\"), and whose")
    print("  every line is a whole token of it (cut at whitespace and |); img2table: the share equal to a cell it")
    print("  extracted. Texts compared after NFKC with whitespace removed; truth cells are the non-empty cells of")
    print("  the truth grid; scored on the first run.")
    print()
    print(f"formscan per page, in this process, by stage (engines loaded once before: {m.engine_load:.1f} s)")
    for stage in STAGES:
        print(f"  {stage:<36}{m.stages[stage]:>8.3f} s {m.stages[stage] / m.stage_total:>6.1%}")
    print(f"  {'total':<36}{m.stage_total:>8.3f} s")
    if m.missing:
        print(f"  not found, counted in other: {', '.join(m.missing)}")


def print_long_run(long_run: LongRun) -> None:
    print()
    print(f"long run: {long_run.pages} pages through one process; RSS after page {long_run.warm_after} "
          f"(every image read once) {long_run.rss_warm / 2**20:.0f} MB, after the last "
          f"{long_run.rss_last / 2**20:.0f} MB: growth {long_run.growth:+.1%}; "
          f"peak {long_run.peak_rss / 2**20:.0f} MB")


def target_figures(
    contenders: dict[str, ContenderRun], long_run: LongRun | None, long_pdf: LongPdfRun | None = None
) -> dict[str, float | None]:
    """The measured value of each of the issue's targets, None when its contender was not run. RSS growth:
    the larger of the in-process run's (``--long``) and the long PDF's (``--long-pdf``), whichever ran; peak
    RSS per worker: the long PDF's workers' too."""
    growths = [g for g in (long_run.growth if long_run else None, long_pdf.growth if long_pdf else None)
               if g is not None]
    one, two = contenders.get(FORMSCAN_1), contenders.get(FORMSCAN_2)
    tess, i2t = contenders.get(TESSERACT_PASS), contenders.get(IMG2TABLE)
    values = (
        one.seconds_per_page / tess.seconds_per_page if one and tess else None,
        one.seconds_per_page / i2t.seconds_per_page if one and i2t else None,
        one.steady_seconds_per_page / two.steady_seconds_per_page
        if one and two and one.steady_seconds_per_page and two.steady_seconds_per_page else None,
        60 / two.steady_seconds_per_page if two and two.steady_seconds_per_page else None,
        max([r.peak_rss for r in (one, two) if r] + ([long_pdf.worker_peak] if long_pdf else [])) / 2**20
        if one or two else None,
        max(growths) * 100 if growths else None,
    )
    return {metric: value for (metric, _, _), value in zip(TARGETS, values)}


TARGET_DPI = (200, 300)  # the pages the pages-per-minute target is set for


def print_targets(figures: dict[str, float | None], contenders: dict[str, ContenderRun], dpis: list[int]) -> None:
    print()
    print(f"{'metric':<50}{'target':>9}{'measured':>11}  result")
    for metric, target, holds in TARGETS:
        value = figures[metric]
        if value is None:
            shown, verdict = "-", "not measured" + (" (--long N, --long-pdf N)" if metric == TARGETS[5][0] else "")
        else:
            shown, verdict = f"{value:.2f}", "pass" if holds(value) else "FAIL"
            if holds(round(value, 2)) != holds(value):
                shown = f"{value:.3f}"  # 1.797 printed 1.80 read as the 1.8x it falls short of
        print(f"{metric:<50}{target:>9}{shown:>11}  {verdict}")
    one, two = contenders.get(FORMSCAN_1), contenders.get(FORMSCAN_2)
    if one and two:
        # Throughput is what a long batch sees; a short run also pays the start once per run.
        print(f"  2 workers vs 1 end to end on these {one.pages} pages, start included: {one.seconds / two.seconds:.2f}x")
    if two:
        print(f"  pages per minute, 2 workers, end to end on these {two.pages} pages, start included: "
              f"{60 / two.seconds_per_page:.1f}")
    if dpis and not TARGET_DPI[0] <= min(dpis) <= max(dpis) <= TARGET_DPI[1]:
        print(f"  pages per minute: these pages are {min(dpis)}-{max(dpis)} dpi; the target is set for "
              f"{TARGET_DPI[0]}-{TARGET_DPI[1]} dpi pages (--dpi {TARGET_DPI[0]}-{TARGET_DPI[1]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("data/dev/scans"),
                        help="generated scans (default data/dev/scans); truth JSONs in FOLDER/../truth")
    parser.add_argument("--pages", type=int, default=None, metavar="N", help="the first N pages only (default all)")
    parser.add_argument("--dpi", type=dpi_range, metavar="LOW-HIGH",
                        help="only PDFs whose pages are all rendered at LOW..HIGH dpi (the issue's pages/minute "
                             "target is set for 200-300 dpi pages)")
    parser.add_argument("--repeats", type=int, default=3, metavar="R", help="runs of every contender (default 3)")
    parser.add_argument("--long", type=int, default=0, metavar="N",
                        help="also feed the pages round through one process for N pages and report RSS growth")
    parser.add_argument("--long-pdf", type=int, default=0, metavar="N",
                        help="also join the documents round and round into one PDF of N pages, run formscan extract "
                             "--workers 2 on it, and report how its workers' RSS grew")
    parser.add_argument("--no-img2table", action="store_true", help="leave img2table out")
    parser.add_argument("--img2table-venv", type=Path, default=IMG2TABLE_VENV, metavar="DIR",
                        help=f"the virtualenv with img2table (default {IMG2TABLE_VENV.name})")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"speed: no folder {args.folder}; make the development set with\n"
              "  python -m bench.eval_set --out data/dev --purpose development", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # the contenders' table shows before a long run starts

    skipped = []
    img2table = None if args.no_img2table else img2table_python(args.img2table_venv)
    if args.no_img2table:
        skipped.append(f"{IMG2TABLE:<42}  left out (--no-img2table)")
    elif img2table is None:
        skipped.append(f"{IMG2TABLE:<42}  skipped: no {args.img2table_venv}; make it with bash bench/img2table_env.sh")
        print(f"speed: {args.img2table_venv} is absent, img2table is skipped; make it with "
              "bash bench/img2table_env.sh", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="formscan-speed-") as temp:
        work = Path(temp)
        documents = choose_documents(args.folder, args.pages, args.dpi)
        images = render_once(documents, work)
        if not images:
            print(f"speed: no pages in {args.folder}", file=sys.stderr)
            return 2
        from pipeline.ocr import CellReader

        started = time.perf_counter()
        reader = CellReader()
        engine_load = time.perf_counter() - started
        measured = measure(args, img2table, work, reader, engine_load, documents, images)
        print_measurements(measured, args.folder, skipped)
        long_run = long_pdf = None
        if args.long:
            long_run = run_long(images, reader, args.long)
            print_long_run(long_run)
        reader.close()
        if args.long_pdf:
            long_pdf = run_long_pdf(documents, args.long_pdf, work)
            print_long_pdf_run(long_pdf)
    figures = target_figures(measured.contenders, long_run, long_pdf)
    print_targets(figures, measured.contenders, [image.dpi for image in measured.images])
    per_right_cell = per_right_cell_ratios(measured.contenders, measured.right_cells)
    for name, (low, high) in per_right_cell.items():
        shown = f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"
        print(f"  per cell text read right (s/page over the share right), formscan / {name}: {shown}")
    if args.json:
        args.json.write_text(json.dumps({
            "pages": len(images), "repeats": args.repeats, "load_average": [measured.load_before, measured.load_after],
            "contenders": {name: {"seconds_per_page": run.seconds_per_page, "peak_rss_mb": run.peak_rss / 2**20,
                                  "steady_seconds_per_page": run.steady_seconds_per_page}
                           for name, run in measured.contenders.items()},
            "accuracy": measured.accuracy, "stages_seconds_per_page": measured.stages,
            "long_run": None if long_run is None else {
                "pages": long_run.pages, "rss_mb_after_first_cycle": long_run.rss_warm / 2**20,
                "rss_mb_after_last": long_run.rss_last / 2**20, "growth": long_run.growth},
            "long_pdf": None if long_pdf is None else {
                "pages": long_pdf.pages, "pages_a_round": long_pdf.cycle, "seconds": long_pdf.seconds,
                "pages_a_minute": long_pdf.pages_a_minute,
                "worker_rss_mb_second_round": long_pdf.worker_rss_first / 2**20,
                "worker_rss_mb_last_round": long_pdf.worker_rss_last / 2**20,
                "worker_peak_mb": long_pdf.worker_peak / 2**20, "growth": long_pdf.growth,
                "command_rss_mb": [long_pdf.main_rss_first / 2**20, long_pdf.main_rss_last / 2**20]},
            "targets": figures,
            "per_right_cell": per_right_cell,
        }, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
