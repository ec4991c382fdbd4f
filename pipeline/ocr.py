"""Read a prepared cell with two engines and reconcile them.

Tesseract's ``chi_sim`` (via tesserocr, one reused API per worker) and PP-OCR
(via rapidocr, models inside the wheel) read every text cell. Measured on this
form's cells, both agreeing was right every time, while on disagreement PP-OCR
was right 82 % of the time and Tesseract almost never; so agreement certifies,
and otherwise PP-OCR's reading stands with its own score as the confidence.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Literal

import cv2
import numpy as np
from opencc import OpenCC

from pipeline.cell_image import CellImage
from pipeline.comparator import comparator_has_bar
from pipeline.repair import repair_text

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's OpenMP threads only fight the workers

TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata/", "/usr/share/tesseract-ocr/4.00/tessdata/")
TESSERACT_LINE_HEIGHT = 32  # px of ink per text line: measured best for chi_sim on cell crops
DASH_LOOKALIKES = set("一-—–_─ー")

Source = Literal[
    "agreed", "agreed_but_trap", "agreed_on_retry", "agreed_lowres_cmp", "comparator_glyph", "vocabulary", "paddle", "tesseract",
    "tesseract_views", "dash", "blank",
]
# Tesseract's other views of a cell it read differently from PP-OCR: (line height, binarised).
# Its misreadings at 32 px (% as 2%/9%/o%, ≤ as E/S, a stray 5 before a figure) change with the
# scale, while a glyph it reads right stays right: on the calibration set's flagged cells a
# second view read exactly PP-OCR's text on 23 of 57 right readings and on none of 16 wrong ones.
TESSERACT_RETRY_VIEWS = ((24, False), (40, False), (TESSERACT_LINE_HEIGHT, True))
RETRY_MIN_CHARS = 2  # a lone "1" is what a rule's remnant reads as, to both engines and at any scale
COMPARATOR_CONFLICT = 0.9  # PP-OCR's score, at most, where it read a bar the glyph does not show
LOW_DPI = 200  # at or below, the bar under ≥/≤ is a pixel or two and may vanish from both engines' view


@dataclass(frozen=True)
class Reading:
    engine: str
    text: str  # lines joined with "\n", as the engine read them
    confidence: float  # 0..1


@dataclass(frozen=True)
class CellText:
    """The reconciled text of one cell, repaired (no wrap breaks), with its evidence."""

    text: str
    confidence: float
    source: Source
    readings: dict[str, str] = field(default_factory=dict)

    @property
    def is_blank(self) -> bool:
        return self.source in ("blank", "dash")


BLANK = CellText("", 1.0, "blank")
DASH = CellText("—", 1.0, "dash")


def comparable(text: str) -> str:
    """The form two readings are compared in: NFKC, no whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _find_tessdata() -> str:
    override = os.environ.get("FORMSCAN_TESSDATA")
    candidates = (override,) if override else TESSDATA_DIRS
    for path in candidates:
        if path and os.path.isfile(os.path.join(path, "chi_sim.traineddata")):
            return path
    raise RuntimeError(
        "Tesseract's chi_sim model was not found in "
        + ", ".join(c for c in candidates if c)
        + ": install the Debian package tesseract-ocr-chi-sim or set FORMSCAN_TESSDATA"
    )


class TesseractEngine:
    name = "tesseract"

    def __init__(self) -> None:
        import tesserocr

        self._tesserocr = tesserocr
        self._api = tesserocr.PyTessBaseAPI(
            path=_find_tessdata(), lang="chi_sim", oem=tesserocr.OEM.LSTM_ONLY
        )
        # Tesseract 5 reads a line it is unsure of a second time, inverted, in case it is light
        # print on dark: a form's cells never are, and the second reading cost 5 % of its time.
        self._api.SetVariable("tessedit_do_invert", "0")

    def read(self, cell: CellImage, line_height: int = TESSERACT_LINE_HEIGHT, binarise: bool = False) -> Reading:
        """The cell's text, its lines scaled to ``line_height`` px of ink (and thresholded, with Otsu's
        level, when ``binarise``)."""
        tesserocr = self._tesserocr
        heights = [b - a for a, b in cell.line_spans] or [cell.image.shape[0]]
        scale = line_height / max(8, float(np.median(heights)))
        image = cell.image
        if abs(scale - 1) > 0.1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        if binarise:
            _, image = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        psm = tesserocr.PSM.SINGLE_LINE if len(cell.line_spans) <= 1 else tesserocr.PSM.SINGLE_BLOCK
        self._api.SetPageSegMode(psm)
        # Raw bytes (tobytes() is row-major whatever the array's layout): through a PIL image,
        # tesserocr encodes a BMP in Python for every call.
        self._api.SetImageBytes(image.tobytes(), image.shape[1], image.shape[0], 1, image.shape[1])
        text = self._api.GetUTF8Text().strip()
        confidence = max(0.0, self._api.MeanTextConf() / 100.0)
        return Reading(self.name, text, confidence)

    def close(self) -> None:
        self._api.End()


class PaddleEngine:
    """PP-OCR: recognition alone for one-line cells, detection + recognition for the rest.

    A cell the crop already shows as one line of ordinary height needs no text detection:
    its line, cut with a margin of half its height on either side (recognition alone, on
    a crop tight at the right, drops the last character), is recognised directly. Measured
    on the development cells this reads short cells at least as well as detection does
    (detection loses a lone glyph or a comparator's bar now and then).

    Recognition runs on OpenVINO, one line at a time: where the CPU has bfloat16 units (AMX,
    AVX-512 BF16) OpenVINO computes in bfloat16, ~8 ms a line with AMX against onnxruntime's ~24 ms,
    16.5 against 28 ms on an AMD EPYC with AVX-512 BF16 alone (elsewhere float32, as fast as
    onnxruntime). Its time is the network's convolutions over the padded width, 78 % of it. Batching lines gained nothing on OpenVINO and
    kept buffers for the widest batch: 200 MB more per worker. Detection stays on onnxruntime
    in float32: in bfloat16 it kept a rule's remnant as a "1" that Tesseract also read
    (a silent error on the development set) and saved little. It sees a cell scanned at more
    than ``DETECTION_DPI`` scaled down to that resolution (``_DetectionAtDpi``).
    """

    name = "paddle"

    def __init__(self) -> None:
        import logging

        from rapidocr import EngineType, RapidOCR

        self._ocr = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Det.limit_type": "max",
                "Det.limit_side_len": 960,
                "Rec.engine_type": EngineType.OPENVINO,
                "Rec.rec_batch_num": 1,
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "EngineConfig.openvino.inference_num_threads": 1,
                "EngineConfig.openvino.num_streams": 1,
                "EngineConfig.openvino.performance_hint": "LATENCY",
                # Pinned, every worker's inference thread lands on the same core: 2 workers on
                # 12 pages took 15.7 s pinned against 13.7 s free.
                "EngineConfig.openvino.enable_cpu_pinning": False,
            }
        )
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self._detector = _DetectionAtDpi(self._ocr._load_det_model())
        self._ocr.text_det = self._detector
        recogniser = self._ocr._load_rec_model()
        recogniser.session = _WidthInSteps(recogniser.session)
        # PP-OCR learnt both scripts and now and then answers in traditional characters
        # (服務對象 for 服务对象); these forms are printed in simplified ones.
        self._simplified = OpenCC("t2s").convert

    def read(self, cell: CellImage) -> Reading:
        """Detection + recognition of one cell."""
        reading = self._read(cell)
        return replace(reading, text=self._simplified(reading.text))

    def read_many(self, cells: list[CellImage]) -> list[Reading]:
        """Every cell's reading: one-line cells by recognition alone, the others by detection too."""
        from rapidocr.ch_ppocr_rec.typings import TextRecInput

        lines = {i: line for i, cell in enumerate(cells) if (line := one_line_crop(cell)) is not None}
        readings: dict[int, Reading] = {}
        if lines:
            result = self._ocr._load_rec_model()(TextRecInput(img=list(lines.values())))
            for i, text, score in zip(lines, result.txts, result.scores):
                if text.strip():
                    readings[i] = Reading(self.name, self._simplified(text), float(score))
        # A line recognition found nothing in (a lone short glyph, a stroke): detection decides.
        return [readings[i] if i in readings else self.read(cell) for i, cell in enumerate(cells)]

    def _read(self, cell: CellImage) -> Reading:
        self._detector.dpi = cell.dpi
        result = self._ocr(cell.image, use_det=True, use_cls=False, use_rec=True)
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or not texts:
            # Detection misses a lone short glyph ("7"); a one-line crop can be recognised whole.
            if len(cell.line_spans) > 1:
                return Reading(self.name, "", 0.0)
            result = self._ocr(cell.image, use_det=False, use_cls=False, use_rec=True)
            texts = getattr(result, "txts", None) or ("",)
            scores = getattr(result, "scores", None) or (0.0,)
            return Reading(self.name, texts[0], float(scores[0]) if texts[0] else 0.0)
        items = []
        for box, text, score in zip(boxes, texts, scores):
            ys = [p[1] for p in box]
            xs = [p[0] for p in box]
            items.append((min(ys), max(ys), min(xs), text, float(score)))
        lines = _group_lines(items)
        text = "\n".join("".join(t for *_, t, _ in line) for line in lines)
        confidence = min(s for *_, s in items)
        return Reading(self.name, text, confidence)


# PP-OCR's text detection sees a cell at no more than this resolution. Its time and buffers grow with
# the pixels (48 ms a cell at 200-300 dpi, 18 ms at 0.6 of the size): on 14 development pages of
# 200-300 dpi a page took ~10 % less, and on 100 calibration pages of 230-300 dpi field accuracy stayed
# 0.9922 and straight-through went 0.860 -> 0.870. At 150 dpi a line's cut changed on one page of 25.
DETECTION_DPI = 170


class _DetectionAtDpi:
    """PP-OCR's text detection on the cell scaled down to ``DETECTION_DPI``, its boxes scaled back,
    so that recognition reads lines cut from the cell at full resolution."""

    def __init__(self, detector) -> None:
        self._detector = detector
        self.dpi = 0  # of the cell about to be read (0: unknown, read as it is)

    def __call__(self, image: np.ndarray):
        scale = DETECTION_DPI / self.dpi if self.dpi > DETECTION_DPI else 1.0
        if scale >= 0.95:
            return self._detector(image)
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        result = self._detector(small)
        if result.boxes is not None:
            ratio = np.array([image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]], np.float32)
            result.boxes = (result.boxes * ratio).astype(result.boxes.dtype)
        return result

    def __getattr__(self, name: str):
        return getattr(self._detector, name)


REC_WIDTH_STEP = 96  # px at PP-OCR's 48-px line height: ~10 widths for a form's cells


class _WidthInSteps:
    """A recognition session whose line images are padded on the right to a multiple of
    ``REC_WIDTH_STEP`` with the value rapidocr pads short lines with. OpenVINO keeps kernels and
    buffers for every input shape it has seen, and compiles each new one: over 20 pages, lines of
    free widths took a worker to 1,124 MB and 2.28 s a page, against 544 MB and 2.06 s."""

    def __init__(self, session) -> None:
        self._session = session

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        extra = -batch.shape[3] % REC_WIDTH_STEP
        if extra:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, extra)))
        return self._session(batch)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


ONE_LINE_MAX_MM = 5.0  # taller "one line" spans are two lines run together, or a line with debris


def one_line_crop(cell: CellImage) -> np.ndarray | None:
    """The cell's single text line as a BGR image for recognition alone, or None when the
    cell needs PP-OCR's detection (several lines, or a line too tall to be just one)."""
    if cell.kind != "text" or len(cell.line_spans) != 1 or not cell.dpi:
        return None
    y0, y1 = cell.line_spans[0]
    height = y1 - y0
    if height > ONE_LINE_MAX_MM * cell.dpi / 25.4 or height < 4:
        return None
    crop = cell.lines()[0].image
    pad = height // 2
    crop = cv2.copyMakeBorder(crop, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=255)
    return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)


def _group_lines(items: list[tuple[float, float, float, str, float]]) -> list[list[tuple]]:
    """Reading order: boxes whose vertical extents overlap by half form one line, left to right."""
    lines: list[list[tuple]] = []
    for item in sorted(items, key=lambda i: (i[0] + i[1]) / 2):
        top, bottom = item[0], item[1]
        if lines:
            last = lines[-1]
            l_top = min(i[0] for i in last)
            l_bottom = max(i[1] for i in last)
            overlap = min(bottom, l_bottom) - max(top, l_top)
            if overlap > 0.5 * min(bottom - top, l_bottom - l_top):
                last.append(item)
                continue
        lines.append([item])
    return [sorted(line, key=lambda i: i[2]) for line in lines]


class CellReader:
    """Both engines, loaded once per worker and reused for every cell."""

    def __init__(self) -> None:
        self.tesseract = TesseractEngine()
        self.paddle = PaddleEngine()

    def read(self, cell: CellImage, vocabulary: frozenset[str] = frozenset()) -> CellText:
        """The cell's reading: Tesseract's first, then PP-OCR's second opinion where needed."""
        return self.second_opinion(cell, self.first_reading(cell, vocabulary))

    def first_reading(self, cell: CellImage, vocabulary: frozenset[str] = frozenset()) -> CellText:
        """Tesseract's reading alone (source ``tesseract``), or a settled one: blank, "—", or
        exactly a word of ``vocabulary`` (source ``vocabulary``).

        About half a page's text cells hold the form's fixed words (labels, 指标 names).
        Tesseract misreading one of them into *another* exact word of the form is rare
        (calibrated as its own evidence class), so PP-OCR (~50 ms a cell against
        Tesseract's ~14 ms) is not asked there.
        """
        if cell.kind == "blank":
            return BLANK
        if cell.kind == "dash":
            return DASH
        tess = self.tesseract.read(cell)
        t_text = repair_text(tess.text)
        if vocabulary and comparable(t_text) in vocabulary:
            return CellText(t_text, max(tess.confidence, 0.99), "vocabulary", {tess.engine: tess.text})
        return CellText(t_text, min(tess.confidence, 0.5), "tesseract", {tess.engine: tess.text})

    def second_opinion(self, cell: CellImage, first: CellText) -> CellText:
        """PP-OCR's reading reconciled with Tesseract's ``first``; a settled first reading stands."""
        return self.second_opinions([(cell, first)])[0]

    def second_opinions(self, cells: list[tuple[CellImage, CellText]]) -> list[CellText]:
        """``second_opinion`` for many cells, PP-OCR reading the unsettled ones in one batch."""
        asked = [i for i, (_, first) in enumerate(cells) if first.source == "tesseract"]
        paddle = dict(zip(asked, self.paddle.read_many([cells[i][0] for i in asked])))
        out = []
        for i, (cell, first) in enumerate(cells):
            if i not in paddle:
                out.append(first)
                continue
            tess = Reading(self.tesseract.name, first.readings.get(self.tesseract.name, ""), first.confidence)
            text = reconcile(paddle[i], tess)
            if text.source == "paddle" and len(cell.line_spans) > 1:
                text = self._agreed_line_by_line(cell, text)
            if text.source == "paddle":
                text = self._agreed_on_retry(cell, text)
            if text.source == "paddle":
                text = restored_by_tesseract_views(text)
            if text.source == "paddle":
                text = marks_restored_by_tesseract_views(text)
            out.append(settle_comparator(cell, text, tess.text))
        return out

    def _agreed_line_by_line(self, cell: CellImage, text: CellText) -> CellText:
        """Tesseract again, one line at a time: on a block it garbles a whole paragraph over
        a seal's remnants or uneven lines that it reads cleanly line by line."""
        lines = repair_text("\n".join(self.tesseract.read(line).text for line in cell.lines()))
        if comparable(lines) != comparable(text.text):
            return text
        readings = {**text.readings, f"{self.tesseract.name}_lines": lines}
        return CellText(text.text, max(text.confidence, 0.999), "agreed", readings)

    def _agreed_on_retry(self, cell: CellImage, text: CellText) -> CellText:
        """Tesseract again at other scales (``TESSERACT_RETRY_VIEWS``), until a view reads exactly
        what PP-OCR read.

        Agreement on a retry is its own evidence class (``agreed_on_retry``), calibrated apart:
        each extra view is another chance to agree by accident. Exactly, not through Tesseract's
        known misreadings: a 150-dpi ≥ under a seal, which PP-OCR dropped ("90%"), came back at
        24 px as "90n", its "%" trap away from agreeing on the wrong value."""
        if len(comparable(text.text)) < RETRY_MIN_CHARS:
            return text
        readings = dict(text.readings)
        for line_height, binarise in TESSERACT_RETRY_VIEWS:
            retry = self.tesseract.read(cell, line_height, binarise)
            readings[f"{self.tesseract.name}_{line_height}px" + ("_binarised" if binarise else "")] = retry.text
            if comparable(repair_text(retry.text)) == comparable(text.text):
                return CellText(text.text, text.confidence, "agreed_on_retry", readings)
        return replace(text, readings=readings)  # every view kept: settle_comparator may find one that vouches

    def close(self) -> None:
        self.tesseract.close()


TESSERACT_VIEWS_AGREEING = 2
# What PP-OCR drops from a paragraph: characters and the marks between phrases, never specks or
# digits. Not ":": Tesseract reads a 。 as ":", and these values print no colon.
_DROPPED_BY_PADDLE = re.compile(r"[\u4e00-\u9fff,。、;]+")  # after NFKC ，； are ,;


def left_out(part: str, whole: str) -> str | None:
    """The characters of ``whole`` that ``part`` leaves out, when ``part``'s characters appear in
    ``whole`` in order (matched as early as they can be); None when they do not."""
    at = _matched_at(part, whole)
    return None if at is None else _all_but(whole, at)


def _matched_at(part: str, whole: str) -> list[int] | None:
    """Where in ``whole`` each of ``part``'s characters is, matched in order as early as it can
    be; None when they do not all appear in order."""
    at, i = [], 0
    for k, ch in enumerate(whole):
        if i < len(part) and ch == part[i]:
            at.append(k)
            i += 1
    return at if i == len(part) else None


def _all_but(whole: str, at: list[int]) -> str:
    skip = set(at)
    return "".join(ch for k, ch in enumerate(whole) if k not in skip)


def restored_by_tesseract_views(text: CellText) -> CellText:
    """PP-OCR drops a phrase or a punctuation mark from a paragraph now and then, at a high score.
    Where ``TESSERACT_VIEWS_AGREEING`` of Tesseract's views of the cell (``_agreed_on_retry``) read
    exactly the same text, which is PP-OCR's with only characters and such marks added, that text
    is taken, in its own evidence class (``tesseract_views``)."""
    paddle = comparable(text.readings.get("paddle", ""))
    views = [repair_text(v) for k, v in text.readings.items() if k.startswith("tesseract") and v.strip()]
    counts = Counter(comparable(v) for v in views)
    if not paddle or not counts:
        return text
    best, n = counts.most_common(1)[0]
    if n < TESSERACT_VIEWS_AGREEING or len(best) <= len(paddle):
        return text
    at = _matched_at(paddle, best)
    if at is None or not _DROPPED_BY_PADDLE.fullmatch(_all_but(best, at)):
        return text
    if best[at[-1] + 1:] not in ("", "。"):
        return text  # after the last character only a full stop is ever dropped
    restored = next(v for v in views if comparable(v) == best)
    return CellText(restored, text.confidence, "tesseract_views", text.readings)


MARK_VIEWS_AGREEING = 3
MARK_CONTEXT = 2  # characters either side of a restored mark every agreeing view must read as PP-OCR did
_MARK = re.compile(r"[,。、;]")  # after NFKC ，； are ,; (a ":" is how Tesseract reads a 。)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def marks_restored_by_tesseract_views(text: CellText) -> CellText:
    """PP-OCR drops a mark where a line of a paragraph starts or ends (检查⏎，及时 read as
    检查⏎及时) where Tesseract, garbling other parts, reads it. A mark that
    ``MARK_VIEWS_AGREEING`` of Tesseract's views read between the same two characters of
    PP-OCR's reading, with ``MARK_CONTEXT`` characters either side read alike, is put back
    (evidence class ``tesseract_views``)."""
    chars, where = _comparable_chars(text.text)
    views = [comparable(repair_text(v)) for k, v in text.readings.items() if k.startswith("tesseract") and v.strip()]
    votes: Counter[tuple[int, str]] = Counter()
    for view in views:
        votes.update(set(_marks_added(chars, view)))
    marks = sorted((at, mark) for (at, mark), n in votes.items() if n >= MARK_VIEWS_AGREEING)
    if not marks:
        return text
    out, last = [], 0
    for at, mark in marks:
        cut = where[at - 1] + 1  # straight after the character before: a line's end, not the next line's start
        out += [text.text[last:cut], _FULL_WIDTH.get(mark, mark)]
        last = cut
    return CellText("".join(out) + text.text[last:], text.confidence, "tesseract_views", text.readings)


_FULL_WIDTH = {",": "，", ";": "；"}


def _comparable_chars(text: str) -> tuple[str, list[int]]:
    """``comparable(text)``, and for each of its characters the index in ``text`` it came from."""
    chars, where = [], []
    for i, ch in enumerate(text):
        for c in "".join(unicodedata.normalize("NFKC", ch).split()):
            chars.append(c)
            where.append(i)
    return "".join(chars), where


def _marks_added(paddle: str, view: str) -> list[tuple[int, str]]:
    """(position in ``paddle``, mark) for each lone mark ``view`` has between two characters of
    ``paddle`` it reads alike ``MARK_CONTEXT`` characters either side, all of them CJK."""
    k = MARK_CONTEXT
    added = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, paddle, view, autojunk=False).get_opcodes():
        if op != "insert" or j2 - j1 != 1 or not _MARK.fullmatch(view[j1]):
            continue
        before, after = paddle[i1 - k:i1], paddle[i1:i1 + k]
        if i1 < k or len(after) < k or not all(_CJK.fullmatch(c) for c in before + after):
            continue
        if view[j1 - k:j1] == before and view[j2:j2 + k] == after:
            added.append((i1, view[j1]))
    return added


_COMPARATOR = re.compile(r"^[≥≤><]+(?=\d|预算)")
# How Tesseract's chi_sim misreads this form's glyphs (measured here and in its tracker):
# ≥/≤ dropped or read as 之/二/过/K/Z/E/P/&/有/《/字/扯/和, or as a "2" set apart by a space; "%"
# read as "5%", "9%", "5" or a lone 久/名/包/狼; "（" read as "〈" (or "〈("); 0 as O in numbers.
# A trap only explains a difference from PP-OCR's reading, never changes what is kept.
_TESSERACT_COMPARATOR = re.compile(r"^[≥≤><=之二过全SKZEP&有《〈字扯和]+(?=\d|预算)")
_TESSERACT_SPACED_TWO = re.compile(r"^\s*2\s+(?=\d)")
_TESSERACT_GLUED_TWO = re.compile(r"^2(?=\d)")
# "%" garbled: (pattern, replacement) pairs, each tried alone. Besides 3%/5%/9%/久/名/包/狼 for
# "%", a stray character or two after it (95%4; 949%p as 94%), or one other character in
# its place (90为, 85思). Only ever compared with PP-OCR reading a "%" there.
_TESSERACT_PERCENT = (
    (re.compile(r"(\d)(?:[359]%|[久名包狼5])$"), r"\1%"),
    (re.compile(r"(\d%).{1,2}$"), r"\1"),
    (re.compile(r"(\d)[359]%.{1,2}$"), r"\1%"),
    (re.compile(r"(\d)[^\d%.]$"), r"\1%"),
)
_TESSERACT_BRACKETS = str.maketrans({"〈": "(", "〉": ")"})
_NUMERIC_WITH_O = re.compile(r"^[\dO.%]*O[\dO.%]*$")
_SPECK_BEFORE_NUMBER = re.compile(r"^[.'`]+(?=\d)")  # no printed number starts with a point


def _tesseract_readings(text: str, after_ge: bool = False) -> set[str]:
    """What Tesseract may have seen, its known misreadings undone (for comparison only).

    ``after_ge``: PP-OCR read a leading ≥/≤, so a leading "2" glued to the number may be
    Tesseract's reading of it (never assumed otherwise: 298 is a number too).
    """
    text = _TESSERACT_SPACED_TWO.sub("", text)
    base = comparable(text).translate(_TESSERACT_BRACKETS).replace("((", "(")
    if _NUMERIC_WITH_O.match(base):
        base = base.replace("O", "0")
    base = _TESSERACT_COMPARATOR.sub("", _SPECK_BEFORE_NUMBER.sub("", base))
    bases = {base, _TESSERACT_GLUED_TWO.sub("", base)} if after_ge else {base}
    return bases | {pattern.sub(replacement, b) for b in bases for pattern, replacement in _TESSERACT_PERCENT}


def _agrees_but_for_tesseract_traps(p_text: str, *t_texts: str) -> bool:
    p_key = comparable(p_text)
    comparator = (_COMPARATOR.match(p_key) or [""])[0]
    if comparator in _DOUBLED_COMPARATORS:
        # ">≥6场": the > must be read exactly, the ≥ after it may be any of its misreadings
        strict = comparator[0]
        return any(comparable(t).startswith(strict) and _agrees_but_for_tesseract_traps(
            p_key[len(strict):], comparable(t)[len(strict):]) for t in t_texts)
    # PP-OCR reads ≥/≤ reliably, but at low resolution it may read ≥ as >: a > or < is
    # certified only by Tesseract reading exactly the same, never through its traps.
    if comparator not in ("", "≥", "≤"):
        return False
    return bool(p_key) and any(p_key[len(comparator) :] in _tesseract_readings(t, after_ge=bool(comparator))
                               for t in t_texts)


_DOUBLED_COMPARATORS = (">≥", "<≤")
_AGREED = ("agreed", "agreed_but_trap", "agreed_on_retry")
_WITH_BAR = {">": "≥", "<": "≤", "≥": "≥", "≤": "≤"}
_WITHOUT_BAR = {"≥": ">", "≤": "<", ">": ">", "<": "<"}


def settle_comparator(cell: CellImage, text: CellText, tesseract: str = "") -> CellText:
    """At low resolution, a leading comparator is what its glyph shows, not what the engines read.

    Both engines lose the bar of ≥/≤ at 150–200 dpi, and Tesseract reads the chevron itself
    as S, &, P, 之, 和, ... Where the glyph decides, it gives the comparator and the engines
    only vouch for the rest: agreeing on it (Tesseract's ``tesseract`` reading or another view of
    the cell in ``text.readings``, its comparator misreadings aside), the reading is in the
    ``comparator_glyph`` evidence class; otherwise it keeps the weaker class it had, corrected.
    An undecided glyph leaves an agreed >/< in the ``agreed_lowres_cmp`` class. A glyph without a
    bar where PP-OCR read one corrects the reading but certifies nothing (``COMPARATOR_CONFLICT``).
    """
    comparator = text.text[:1]
    if comparator not in _WITH_BAR or not cell.dpi:
        return text
    views = [tesseract, *(v for k, v in text.readings.items() if k.startswith("tesseract_"))]
    if cell.dpi > LOW_DPI:
        # PP-OCR reads the comparator right at this resolution: the glyph only confirms it,
        # never corrects, and Tesseract vouches for the rest through its misreadings.
        if text.source == "paddle" and comparator_has_bar(cell) == (comparator in "≥≤"):
            rest = comparable(text.text[1:])
            if any(_vouches_for_rest(view, rest) for view in views):
                return replace(text, source="comparator_glyph")
        return text
    bar = comparator_has_bar(cell)
    if bar is None:
        undecided = text.source in ("agreed", "agreed_on_retry") and comparator in "><"
        return replace(text, source="agreed_lowres_cmp") if undecided else text
    settled = (_WITH_BAR if bar else _WITHOUT_BAR)[comparator] + text.text[1:]
    if not bar and text.readings.get("paddle", "")[:1] in ("≥", "≤"):
        # PP-OCR loses a bar at this resolution rather than adds one: the glyph and it conflict,
        # and neither certifies the other
        return replace(text, text=settled, source="paddle", confidence=min(text.confidence, COMPARATOR_CONFLICT))
    rest = comparable(text.text[1:])
    if text.source in _AGREED or any(_vouches_for_rest(view, rest) for view in views):
        return replace(text, text=settled, source="comparator_glyph")
    return replace(text, text=settled)


# Where the glyph has decided the comparator, whatever Tesseract made of it (委, 乏, 人, 才, <s:
# one or two characters that are not digits) is only its reading of that glyph.
_TESSERACT_ANY_COMPARATOR = re.compile(r"^[^\d\s.]{1,2}(?=\d|预算)")


def _vouches_for_rest(tesseract: str, rest: str) -> bool:
    """Tesseract's reading is PP-OCR's after the comparator: through its known misreadings,
    or with any one or two characters in the comparator's place."""
    if not rest:
        return False
    readings = _tesseract_readings(tesseract, after_ge=True)
    return rest in readings or any(_TESSERACT_ANY_COMPARATOR.sub("", r) == rest for r in readings)


def _only_dashes(text: str) -> bool:
    return bool(text) and set(text) <= DASH_LOOKALIKES


def reconcile(paddle: Reading, tess: Reading) -> CellText:
    readings = {paddle.engine: paddle.text, tess.engine: tess.text}
    p_text, t_text = repair_text(paddle.text), repair_text(tess.text)
    if _only_dashes(p_text) and (not t_text or _only_dashes(t_text)):
        # A lone stroke the cell classifier did not take for "—" (short in this font, or
        # broken by noise): read as 一 or -, it is the form's dash.
        return CellText("—", paddle.confidence, "dash", readings)
    if p_text and comparable(p_text) == comparable(t_text):
        return CellText(p_text, max(paddle.confidence, 0.999), "agreed", readings)
    if _agrees_but_for_tesseract_traps(p_text, t_text, tess.text):  # raw too: repair closes "2 85%"
        return CellText(p_text, max(paddle.confidence, 0.99), "agreed_but_trap", readings)
    if not p_text and t_text:
        # PP-OCR found nothing; Tesseract alone has never been trustworthy here.
        return CellText(t_text, min(tess.confidence, 0.5), "tesseract", readings)
    return CellText(p_text, paddle.confidence, "paddle", readings)
