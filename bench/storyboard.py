"""Benchmark: what the storyboard output adds to a transcode (target: at most +10 % wall time).

Run from the repository root:  .venv/bin/python bench/storyboard.py [--reps N] [--seconds S]

The 20 s 1080p sources of `make bench-transcode` (bench/transcode.py, cached in the same work
dir), each transcoded by videoflix.videos.media.transcode.transcode() exactly as the app calls it,
(a) with storyboard=False (the baseline, measured in the same run) and (b) with the storyboard
(the default). Repetitions alternate a/b; medians of wall and CPU time, and their ratios.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from transcode import add_source_arguments, report, sources, timed  # noqa: E402  (bench/transcode.py)

from videoflix.videos.media.transcode import transcode  # noqa: E402

TARGET = 1.10


def run_case(name: str, src: Path, work: Path, reps: int) -> tuple[str, bool]:
    runs = {"a": functools.partial(transcode, storyboard=False), "b": transcode}
    res: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    print(f"\n=== {name}: {src.name} ===")
    for i in range(reps):
        for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
            wall, cpu = timed(runs[k], src, work / f"out_storyboard_{name}_{k}")
            res[k].append((wall, cpu))
            print(f"  rep {i + 1} {k}: wall {wall:6.2f}s cpu {cpu:6.2f}s", flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in res.items()}
    rw, rc = med["b"][0] / med["a"][0], med["b"][1] / med["a"][1]
    paired = statistics.median(b[0] / a[0] for a, b in zip(res["a"], res["b"]))
    print(f"  median wall: without {med['a'][0]:.2f}s  with storyboard {med['b'][0]:.2f}s  ratio {rw:.3f}")
    print(f"  median cpu : without {med['a'][1]:.2f}s  with storyboard {med['b'][1]:.2f}s  ratio {rc:.3f}")
    print(f"  median of per-rep wall ratios (adjacent runs): {paired:.3f}")
    print(f"  load average now: {os.getloadavg()[0]:.1f} (2 cores: >2 means other work competed)")
    sprites = sorted((work / f"out_storyboard_{name}_b" / "storyboard").glob("*.jpg"))
    print(f"  storyboard: {len(sprites)} sprite(s), {sum(p.stat().st_size for p in sprites)} bytes")
    return f"{name}: wall with/without storyboard {rw:.3f} <= {TARGET}", rw <= TARGET


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(ap, reps=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work, srcs = sources(args)
    checks = [run_case("h264", srcs["h264"], work, args.reps)]
    if not args.skip_reencode:
        checks.append(run_case("mpeg4", srcs["mpeg4"], work, args.reps))
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
