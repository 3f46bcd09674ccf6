"""What making a published version durable costs: LocalStore.put_dir fsyncs every file of the
finished transcode folder (stores.sync_tree) before its rename. Times transcode() and then
sync_tree() on its fresh output (the state the worker publishes it in), `--reps` times, on the
20 s 1080p H.264 source of bench/transcode.py; prints the medians and sync/transcode.

    .venv/bin/python bench/publish_sync.py [--reps 3] [--seconds 20] [--work DIR]

The output folder is made in --work (default: $TMPDIR/videoflix-bench, where the source is cached):
put it on the disk MEDIA_ROOT lives on.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from transcode import add_source_arguments, sources  # noqa: E402  (bench/transcode.py: the cached sources)

from videoflix.videos.media.transcode import transcode  # noqa: E402
from videoflix.videos.storage.backends import sync_tree  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(ap, reps=3, skip_reencode=False)
    args = ap.parse_args()
    work, srcs = sources(args)
    source = srcs["h264"]
    walls, syncs = [], []
    for rep in range(args.reps):
        out = work / f"out_publish_sync_{rep}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        transcode(source, out)
        walls.append(time.perf_counter() - started)
        files = [Path(root, name) for root, _, names in os.walk(out) for name in names]
        started = time.perf_counter()
        sync_tree(out)
        syncs.append(time.perf_counter() - started)
        print(f"  rep {rep + 1}: transcode {walls[-1]:.2f} s, sync_tree {syncs[-1] * 1000:.0f} ms "
              f"({len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB)", flush=True)
        shutil.rmtree(out)
    print(f"median: transcode {statistics.median(walls):.2f} s, sync_tree {statistics.median(syncs) * 1000:.0f} ms, "
          f"sync/transcode {statistics.median(s / w for s, w in zip(syncs, walls, strict=True)) * 100:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
