"""Score ``formscan extract`` output against ground truth.

    python -m bench.accuracy OUT.jsonl --truth fixtures/truth [--errors]

Prints field accuracy (leaf fields exactly right: text after NFKC with
whitespace removed, numbers within 0.005), straight-through rate (pages with
every field right and nothing flagged), silent error rate (fields wrong and not
flagged, over all fields), review load (flagged fields over all fields) and
lost pages (form pages that got an error line instead of a record), overall,
per printing style (``style:<name>``) and per damage kind.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NUMBER_TOLERANCE = 0.005


def leaf_fields(record: dict) -> dict[str, object]:
    """Flatten a record into ``path -> value`` with the paths flags use (``funds[0].executed``)."""
    leaves: dict[str, object] = {}
    for key, value in record.items():
        if isinstance(value, list):
            for i, row in enumerate(value):
                for sub, leaf in row.items():
                    leaves[f"{key}[{i}].{sub}"] = leaf
        else:
            leaves[key] = value
    return leaves


def same_value(truth: object, got: object) -> bool:
    if isinstance(truth, (int, float)) and not isinstance(truth, bool):
        return isinstance(got, (int, float)) and abs(float(truth) - float(got)) <= NUMBER_TOLERANCE
    if isinstance(truth, str):
        norm = lambda s: "".join(unicodedata.normalize("NFKC", s).split())  # noqa: E731
        return isinstance(got, str) and norm(truth) == norm(got)
    return truth == got


def is_flagged(path: str, flags: list[dict]) -> bool:
    for flag in flags:
        name = flag["field"]
        if path == name or path.startswith(name + ".") or path.startswith(name + "["):
            return True
    return False


@dataclass
class PageScore:
    file: str
    page: int
    kinds: list[str]
    fields: int = 0
    right: int = 0
    flagged: int = 0
    silent: int = 0
    error: str | None = None
    wrong: list[tuple[str, object, object, bool]] = field(default_factory=list)  # path, truth, got, flagged

    @property
    def straight_through(self) -> bool:
        return self.error is None and self.right == self.fields and self.flagged == 0


def damage_kinds(scan: dict, style: str = "pillow") -> list[str]:
    kinds = ["all", f"style:{style}"]
    dpi = scan.get("dpi", 300)
    kinds.append("dpi<=150" if dpi <= 150 else "dpi<=200" if dpi <= 200 else "dpi>200")
    if abs(scan.get("skew_deg", 0)) >= 2:
        kinds.append("skew>=2")
    if scan.get("seal"):
        kinds.append("seal")
    if scan.get("faded_rules") or scan.get("broken_rules"):
        kinds.append("faded/broken rules")
    kinds.append("colour" if scan.get("color") else "grey")
    kinds.append(scan.get("font_style", "?"))
    return kinds


def load_truth(truth_dir: Path) -> dict[tuple[str, int], dict]:
    pages: dict[tuple[str, int], dict] = {}
    for path in sorted(truth_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = Path(data["file"]).name
        for page in data["pages"]:
            pages[(name, page["page"])] = page
    return pages


def score_page(truth_page: dict, line: dict | None, file: str) -> PageScore:
    truth = leaf_fields(truth_page["record"])
    style = truth_page.get("style", {}).get("name", "pillow")
    result = PageScore(file, truth_page["page"], damage_kinds(truth_page.get("scan", {}), style))
    if line is None or line.get("record") is None:
        result.error = (line or {}).get("error", {}).get("kind", "missing")
        result.fields = result.flagged = len(truth)  # an error line is seen by a human: not silent
        result.wrong = [(p, v, None, True) for p, v in truth.items()]
        return result
    got = leaf_fields(line["record"])
    flags = line.get("flags", [])
    for path in sorted(set(truth) | set(got)):
        result.fields += 1
        right = path in truth and path in got and same_value(truth[path], got[path])
        flagged = is_flagged(path, flags)
        result.right += right
        result.flagged += flagged
        if not right:
            result.silent += not flagged
            result.wrong.append((path, truth.get(path), got.get(path), flagged))
    return result


def score(lines: list[dict], truth: dict[tuple[str, int], dict]) -> list[PageScore]:
    by_page = {(Path(l["source"]["file"]).name, l["source"].get("page")): l for l in lines}
    return [score_page(page, by_page.get(key), key[0]) for key, page in sorted(truth.items()) if _seen(key, by_page)]


def _seen(key: tuple[str, int], by_page: dict) -> bool:
    # Score only the files that were extracted, so a run over a subset is scored on that subset.
    return any(name == key[0] for name, _ in by_page)


def summarise(pages: list[PageScore]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[PageScore]] = defaultdict(list)
    for page in pages:
        for kind in page.kinds:
            groups[kind].append(page)
    table = {}
    for kind, members in groups.items():
        fields = sum(p.fields for p in members) or 1
        table[kind] = {
            "pages": len(members),
            "field_accuracy": sum(p.right for p in members) / fields,
            "straight_through": sum(p.straight_through for p in members) / len(members),
            "silent_error_rate": sum(p.silent for p in members) / fields,
            "review_load": sum(p.flagged for p in members) / fields,
            "lost": sum(p.error is not None for p in members),  # form pages given no record at all
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="JSONL written by formscan extract")
    parser.add_argument("--truth", type=Path, default=Path("fixtures/truth"), help="folder of truth JSON files")
    parser.add_argument("--errors", action="store_true", help="list every wrong field")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    lines = [json.loads(l) for l in args.results.read_text(encoding="utf-8").splitlines() if l.strip()]
    pages = score(lines, load_truth(args.truth))
    if not pages:
        print("accuracy: no scored pages (do the result files match the truth's file names?)", file=sys.stderr)
        return 1
    table = summarise(pages)
    if args.json:
        print(json.dumps(table, indent=2, ensure_ascii=False))
    else:
        print(f"{'pages':<22}{'n':>4}{'field acc':>11}{'straight':>10}{'silent err':>12}{'review':>9}{'lost':>6}")
        for kind, m in sorted(table.items(), key=lambda kv: (kv[0] != "all", not kv[0].startswith("style:"), kv[0])):
            print(
                f"{kind:<22}{m['pages']:>4}{m['field_accuracy']:>11.4f}{m['straight_through']:>10.3f}"
                f"{m['silent_error_rate']:>12.4f}{m['review_load']:>9.3f}{m['lost']:>6}"
            )
    if args.errors:
        for page in pages:
            for path, truth, got, flagged in page.wrong:
                mark = "flagged" if flagged else "SILENT"
                print(f"{page.file} p{page.page} {path}: truth={truth!r} got={got!r} [{mark}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
