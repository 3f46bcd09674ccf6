"""Benchmark: Videoflix single-process HLS ladder vs the usual one-ffmpeg-per-rendition.

Run from the repository root:  .venv/bin/python bench/transcode.py [--reps N] [--seconds S]

(a) baseline: one ffmpeg per rendition (480p/720p/1080p), libx264 preset medium,
    CRF 23, AAC audio, HLS output.
(b) videoflix.videos.media.transcode.transcode() exactly as the app calls it (probe included).
Repetitions alternate a/b; medians are reported. SSIM of every rendition is measured
against the source with ffmpeg's ssim filter (rendition scaled back to source size).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from videoflix.videos.media.ffmpeg import ffmpeg_exe  # noqa: E402
from videoflix.videos.media.plan import plan_renditions  # noqa: E402
from videoflix.videos.media.probe import probe  # noqa: E402
from videoflix.videos.media.transcode import transcode  # noqa: E402

FF = ffmpeg_exe()
CONTENT = ("mandelbrot=s=1920x1080:r=30[m];testsrc2=s=1920x1080:r=30[t];"
           "[m][t]blend=all_mode=average,format=yuv420p[v];"
           "sine=f=440:sample_rate=48000[s];anoisesrc=a=0.05:r=48000[n];"
           "[s][n]amix=inputs=2,aformat=channel_layouts=stereo[a]")


def sh(cmd: list[str]) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stderr


def make_sources(work: Path, seconds: int) -> dict[str, Path]:
    """Cached sources: a phone-like H.264 upload and a legacy MPEG-4 Part 2 file."""
    h264 = work / f"src_h264_1080p30_{seconds}s.mp4"
    if not h264.exists():
        print(f"generating {h264.name} ...", flush=True)
        sh([FF, "-v", "error", "-y", "-filter_complex", CONTENT, "-map", "[v]", "-map", "[a]",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "faster", "-profile:v", "high",
            "-b:v", "5M", "-maxrate", "5.5M", "-bufsize", "10M", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(h264) + ".tmp.mp4"])
        os.replace(str(h264) + ".tmp.mp4", h264)
    mpeg4 = work / f"src_mpeg4_1080p30_{seconds}s.avi"
    if not mpeg4.exists():
        print(f"generating {mpeg4.name} ...", flush=True)
        sh([FF, "-v", "error", "-y", "-i", str(h264), "-c:v", "mpeg4", "-q:v", "3", "-g", "60",
            "-c:a", "libmp3lame", "-b:a", "160k", "-f", "avi", str(mpeg4) + ".tmp"])
        os.replace(str(mpeg4) + ".tmp", mpeg4)
    return {"h264": h264, "mpeg4": mpeg4}


def add_source_arguments(ap: argparse.ArgumentParser, reps: int, *, skip_reencode: bool = True) -> None:
    """The options of every bench on these sources: --reps, --seconds, --work (and --skip-reencode)."""
    ap.add_argument("--reps", type=int, default=reps, help="repetitions per case (median)")
    ap.add_argument("--seconds", type=int, default=20, help="source length in seconds")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "videoflix-bench"))
    if skip_reencode:
        ap.add_argument("--skip-reencode", action="store_true", help="only the H.264 (copy) case")


def sources(args: argparse.Namespace) -> tuple[Path, dict[str, Path]]:
    """(the work dir, its cached sources) for the options of add_source_arguments."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    return work, make_sources(work, args.seconds)


def report(checks: list[tuple[str, bool]]) -> int:
    """Print each check as PASS or FAIL; the exit status (0 when all pass)."""
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


def baseline(src: Path, out: Path) -> None:
    """One ffmpeg run per rendition, default preset (medium), CRF 23, AAC, HLS."""
    info = probe(src)
    out.mkdir()
    for r in plan_renditions(info):
        d = out / r.label
        d.mkdir()
        sh([FF, "-v", "error", "-y", "-i", str(src), "-vf", f"scale={r.width}:{r.height}",
            "-c:v", "libx264", "-crf", "23", "-c:a", "aac", "-f", "hls", "-hls_time", "6",
            "-hls_playlist_type", "vod", "-hls_segment_filename", str(d / "seg%03d.ts"),
            str(d / "index.m3u8")])


def ours(src: Path, out: Path) -> None:
    transcode(src, out)


def timed(fn, src: Path, out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    fn(src, out)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime
           + s1.ru_utime - s0.ru_utime + s1.ru_stime - s0.ru_stime)
    return wall, cpu


def rendition_bytes(out: Path) -> dict[str, int]:
    return {d.name: sum(f.stat().st_size for f in d.glob("*.ts"))
            for d in sorted(out.iterdir()) if d.is_dir()}


def ssim(rendition_playlist: Path, src: Path, w: int, h: int) -> float:
    err = sh([FF, "-hide_banner", "-nostats", "-i", str(rendition_playlist), "-i", str(src),
              "-filter_complex",
              f"[0:v]scale={w}:{h}:flags=bicubic,setpts=PTS-STARTPTS,format=yuv420p[a];"
              f"[1:v]setpts=PTS-STARTPTS,format=yuv420p[b];[a][b]ssim",
              "-an", "-f", "null", "-"])
    m = re.findall(r"SSIM .*All:([0-9.]+)", err)
    if not m:
        sys.exit(f"no SSIM in output for {rendition_playlist}")
    return float(m[-1])


def run_case(name: str, src: Path, work: Path, reps: int, speed_target: float,
             quality_targets: bool) -> list[tuple[str, bool]]:
    info = probe(src)
    print(f"\n=== {name}: {src.name}  {info.width}x{info.height} {info.video_codec} "
          f"{info.fps:.0f}fps {info.duration:.1f}s video {info.video_bitrate / 1e6:.2f} Mbit/s ===")
    outa, outb = work / f"out_{name}_a", work / f"out_{name}_b"
    res = {"a": [], "b": []}
    for i in range(reps):
        order = ("a", "b") if i % 2 == 0 else ("b", "a")
        for k in order:
            wall, cpu = timed(baseline if k == "a" else ours, src, outa if k == "a" else outb)
            res[k].append((wall, cpu))
            print(f"  rep {i + 1} {k}: wall {wall:6.2f}s cpu {cpu:6.2f}s", flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in res.items()}
    rw, rc = med["a"][0] / med["b"][0], med["a"][1] / med["b"][1]
    print(f"  median wall: baseline {med['a'][0]:.2f}s  videoflix {med['b'][0]:.2f}s  ratio a/b {rw:.2f}x")
    print(f"  median cpu : baseline {med['a'][1]:.2f}s  videoflix {med['b'][1]:.2f}s  ratio a/b {rc:.2f}x")
    paired = statistics.median(a[0] / b[0] for a, b in zip(res["a"], res["b"]))
    print(f"  median of per-rep wall ratios (adjacent a/b runs, less sensitive to load): {paired:.2f}x")
    print(f"  load average now: {os.getloadavg()[0]:.1f} (2 cores: >2 means other work competed)")
    ba, bb = rendition_bytes(outa), rendition_bytes(outb)
    copied = [r.label for r in plan_renditions(info) if r.copy]
    print(f"  stream-copied renditions: {copied or 'none'}")
    checks = [(f"{name}: wall speedup {rw:.2f}x >= {speed_target}x", rw >= speed_target)]
    print(f"  {'rendition':<10}{'bytes a':>12}{'bytes b':>12}{'SSIM a':>10}{'SSIM b':>10}{'dSSIM':>9}")
    for label in ba:
        sa = ssim(outa / label / "index.m3u8", src, info.width, info.height)
        sb = ssim(outb / label / "index.m3u8", src, info.width, info.height)
        print(f"  {label:<10}{ba[label]:>12}{bb.get(label, 0):>12}{sa:>10.4f}{sb:>10.4f}{sb - sa:>+9.4f}")
        if quality_targets:
            checks.append((f"{name}: {label} SSIM {sb:.4f} >= baseline {sa:.4f} - 0.003",
                           sb >= sa - 0.003))
    ta, tb = sum(ba.values()), sum(bb.values())
    print(f"  {'total':<10}{ta:>12}{tb:>12}   (b/a = {tb / ta:.3f})")
    if quality_targets:
        checks.append((f"{name}: total bytes b/a {tb / ta:.3f} <= 1.10", tb <= 1.10 * ta))
    return checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(ap, reps=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"ffmpeg: {FF}  cores: {os.cpu_count()}  work dir: {args.work}")
    work, srcs = sources(args)
    checks = run_case("h264", srcs["h264"], work, args.reps, 3.5, True)
    if not args.skip_reencode:
        checks += run_case("mpeg4", srcs["mpeg4"], work, args.reps, 2.0, False)
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
