"""Pages a minute of this checkout against an earlier revision, measured side by side in one run.

    .venv/bin/python -m bench.speed_against REV data/dev/scans [--pages 20] [--repeats 2] [--workers 2]

REV is checked out into a temporary git worktree; both trees run ``formscan extract
--workers N`` on the same first ``--pages`` PDFs of the folder, in turn (each first in
alternate repeats), ``--repeats`` times
(so a shared machine's drifting load falls on both alike), with this checkout's
virtualenv. Prints each run's pages a minute (from the command's own summary line), the
medians, and this checkout's median over REV's: the speed issue's gate is that it does not
fall below 0.90. ``--command ingest`` times ``formscan ingest`` the same way.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"([\d.]+) pages/min")


def pages_per_minute(tree: Path, pdfs: list[Path], workers: int, out: Path, command: str = "extract") -> float:
    """One ``formscan extract`` (or ``ingest``, into a fresh queue) run in ``tree`` (its own code
    first on the path)."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1", PYTHONPATH=str(tree), PREFECT_HOME=str(out.parent / "prefect"),
               DO_NOT_TRACK="1")
    env.pop("PREFECT_API_URL", None)
    if command == "ingest":
        queue = out.with_suffix(".db")
        queue.unlink(missing_ok=True)
        target = ["--db", f"sqlite:///{queue}", "--store", str(out.parent / f"store-{tree.name}")]
    else:
        target = ["-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "formscan", command, *map(str, pdfs), *target, "--workers", str(workers)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=3600, check=False,
    )
    match = SUMMARY.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"bench.speed_against: formscan in {tree} failed:\n{done.stderr[-2000:]}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the revision to compare with (a commit, tag or branch)")
    parser.add_argument("folder", type=Path, help="a folder of PDFs, e.g. data/dev/scans")
    parser.add_argument("--pages", type=int, default=20, help="how many PDFs of the folder (sorted by name)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--command", choices=("extract", "ingest"), default="extract",
                        help="the command timed (ingest: into a fresh SQLite queue each run; its pages a minute "
                        "count from the flow's start, Prefect's server start left out)")
    args = parser.parse_args()
    pdfs = sorted(args.folder.glob("*.pdf"))[: args.pages]
    if not pdfs:
        raise SystemExit(f"bench.speed_against: no PDFs in {args.folder}")
    pdfs = [p.resolve() for p in pdfs]
    with tempfile.TemporaryDirectory(prefix="formscan-against-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.rev], cwd=ROOT, check=True)
        try:
            runs: dict[str, list[float]] = {"this checkout": [], args.rev: []}
            for repeat in range(1, args.repeats + 1):
                trees = [("this checkout", ROOT), (args.rev, base)]
                # Each goes first in turn: the order alone moves the ratio (a revision against itself).
                for name, tree in trees if repeat % 2 else trees[::-1]:
                    ppm = pages_per_minute(tree, pdfs, args.workers, Path(tmp) / "out.jsonl", args.command)
                    runs[name].append(ppm)
                    print(f"repeat {repeat}: {name:<16} {ppm:6.1f} pages/min", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    ratio = medians["this checkout"] / medians[args.rev]
    print(f"formscan {args.command}, {len(pdfs)} PDFs, {args.workers} workers, {args.repeats} repeats (medians): this checkout "
          f"{medians['this checkout']:.1f}, {args.rev} {medians[args.rev]:.1f} pages/min; ratio {ratio:.3f} "
          f"({'holds' if ratio >= 0.9 else 'FAILS'} the >= 0.90 gate)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
