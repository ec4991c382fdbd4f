"""Generate the evaluation and calibration sets: pages the tests never tune on.

    python -m bench.eval_set --out data/eval --pages 48            # evaluation
    python -m bench.eval_set --out data/calibration --purpose calibration
    python -m bench.eval_set --out data/dev --purpose development    # for tuning stages
    python -m bench.eval_set --out data/hard --purpose hard-development  # worst damage only
    python -m bench.eval_set --out data/writer --style writer --pages 44    # another printing style

``--style`` prints the forms the way an office's software would (``fixtures.styles``):
``pillow`` (the default, ``fixtures.generate``), ``calc``, ``writer`` or ``web``. A set in a
printed style starts with the four seed forms (under their fixed damage), then random forms.

Each set differs from the committed fixtures in seed, fonts and damage mix:
the evaluation set draws mostly on fonts the fixtures do not use (AR PL UKai,
WenQuanYi Micro Hei) and on harsher damage (more seals, 150 dpi, faded and broken
rules); the calibration set has its own seed, so confidence fitted on it is judged
on pages it has never seen; the development set is the one to tune stages on, and
the hard development set gives every page the worst of each damage (150 dpi,
faded and broken rules, colour, seals) to find the failure modes of the layout.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from fixtures.generate import _render_retry, _write_doc, available_fonts, random_form, random_scan, seed_forms, seed_scans
from fixtures.styles import Style, ensure_printer, write_with_retries

LOW_DPI_SHARE = 0.25
SEEDS = {"evaluation": 7_700_001, "calibration": 5_500_003, "development": 3_300_007,
         "hard-development": 9_100_013}
FONTS = {
    # The committed fixtures use Noto Sans/Serif CJK SC, WenQuanYi Zen Hei and AR PL UMing.
    "evaluation": ("AR PL UKai CN", "WenQuanYi Micro Hei", "AR PL UKai CN", "WenQuanYi Micro Hei", "Noto Serif CJK SC"),
    "calibration": ("AR PL UMing CN", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "AR PL UKai CN", "WenQuanYi Micro Hei"),
    "development": ("AR PL UMing CN", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "AR PL UKai CN", "WenQuanYi Micro Hei"),
}
FONTS["hard-development"] = FONTS["development"]
DAMAGE = {
    "evaluation": dict(dpi_range=(150, 300), seal_prob=0.6, color_prob=0.5, faded_prob=0.4, broken_prob=0.45),
    "calibration": dict(dpi_range=(150, 300), seal_prob=0.5, color_prob=0.5, faded_prob=0.35, broken_prob=0.35),
    "development": dict(dpi_range=(150, 300), seal_prob=0.6, color_prob=0.5, faded_prob=0.45, broken_prob=0.45),
    "hard-development": dict(dpi_range=(150, 150), seal_prob=0.8, color_prob=0.7, faded_prob=0.9, broken_prob=0.9),
}


def _scan(rng: random.Random, purpose: str):
    scan = random_scan(rng, FONTS[purpose], **DAMAGE[purpose])
    if rng.random() < LOW_DPI_SHARE:
        scan.dpi = 150  # archives are often scanned at 150 dpi: give it a real share
    return scan


def missing_fonts(purpose: str) -> list[str]:
    """The set's fonts not installed here. ``random_scan`` would draw with the others alone and
    give another set under the same name: on a machine without AR PL UKai and WenQuanYi Micro Hei
    the evaluation set lost most of its fonts silently."""
    return sorted(set(FONTS[purpose]) - set(available_fonts()))


def generate(out: Path, pages: int, purpose: str, style: Style = Style.PILLOW) -> list[str]:
    missing = missing_fonts(purpose)
    if missing:
        raise LookupError(
            f"the {purpose} set is drawn with {', '.join(missing)}, not installed here: "
            "bash scripts/setup.sh installs them (fonts-arphic-ukai, fonts-wqy-microhei)"
        )
    if style is not Style.PILLOW:
        ensure_printer(style)
        return _generate_printed(out, pages, purpose, style)
    rng = random.Random(SEEDS[purpose])
    ids = []
    for k in range(1, pages + 1):
        doc_id = f"{purpose[:4]}-{k:03d}" if purpose != "hard-development" else f"hard-{k:03d}"
        item = _render_retry(lambda: random_form(rng, doc_id), lambda: _scan(rng, purpose))
        _write_doc(out, doc_id, [item])
        ids.append(doc_id)
    return ids


def _generate_printed(out: Path, pages: int, purpose: str, style: Style) -> list[str]:
    """The four seed forms, then random ones up to ``pages``, printed in ``style``."""
    rng = random.Random(SEEDS[purpose] + list(Style).index(style))
    prefix = f"{style.value}-{purpose[:4] if purpose != 'hard-development' else 'hard'}"
    ids = []
    for form, scan in list(zip(seed_forms(), seed_scans()))[:pages]:
        doc_id = f"{style.value}-{form.form_id}"
        write_with_retries(style, out, doc_id, lambda: (form, scan), rng)
        ids.append(doc_id)
    for k in range(len(ids) + 1, pages + 1):
        doc_id = f"{prefix}-{k:03d}"
        write_with_retries(style, out, doc_id, lambda: (random_form(rng, doc_id), _scan(rng, purpose)), rng)
        ids.append(doc_id)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--purpose", choices=sorted(SEEDS), default="evaluation")
    parser.add_argument("--style", type=Style, choices=list(Style), default=Style.PILLOW,
                        help="how the forms are printed (default: pillow, fixtures.generate's drawing)")
    args = parser.parse_args()
    try:
        ids = generate(args.out, args.pages, args.purpose, args.style)
    except LookupError as exc:
        raise SystemExit(f"bench.eval_set: {exc}") from None
    print(f"{len(ids)} pages written to {args.out}/scans with truth in {args.out}/truth")


if __name__ == "__main__":
    main()
