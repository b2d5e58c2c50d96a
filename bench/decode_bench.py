"""Decode benchmark: peak memory and time of thumbnailing very large images, one at a time and on
the import job's threads at once.

    python bench/decode_bench.py                    # this checkout
    python bench/decode_bench.py --tree /some/old   # another checkout of Loupe, for a before/after
    python bench/decode_bench.py --quick            # the 196 MP 1-bit page only

What runs: each case in a fresh child process (`python -c`, PYTHONPATH=the tree), which reads the
files, calls services.imaging.process() on each, and reports its own peak RSS (VmHWM from
/proc/self/status) and the seconds spent. "threads" cases map the files over a ThreadPoolExecutor
as workers/imports.py does, sharing an imaging.DecodeBudget as the job does when the tree has one.
The images are made with Pillow into a temp folder (not timed): a 14000x14000 1-bit PNG (a scanned
page, a few KB on disk, 196 MP), a 10000x10000 palette PNG, an 8000x8000 RGBA PNG.

Figures (the last line is JSON): per case, peak_mb and seconds.
"""

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, emit, log

CHILD = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from services import imaging
files, threads, limit = sys.argv[1].split(","), int(sys.argv[2]), 200_000_000
datas = [open(f, "rb").read() for f in files]
budget = imaging.DecodeBudget(limit) if hasattr(imaging, "DecodeBudget") else None
def one(data):
    return imaging.process(data, limit, 256, budget) if budget else imaging.process(data, limit, 256)
start = time.perf_counter()
with ThreadPoolExecutor(threads) as pool:
    results = list(pool.map(one, datas))
seconds = time.perf_counter() - start
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(hwm // 1024, round(seconds, 2))
"""


def make_images(folder: Path, quick: bool) -> dict[str, Path]:
    from PIL import Image

    def save(name: str, image) -> Path:
        path = folder / name
        out = io.BytesIO()
        image.save(out, "PNG")
        path.write_bytes(out.getvalue())
        log(f"  {name}: {image.mode} {image.width}x{image.height}, {len(out.getvalue()) / 1024:.0f} KB")
        return path

    page = Image.new("1", (14000, 14000), 1)
    page.paste(0, (1750, 1750, 7000, 4666))
    paths = {"page": save("page-196mp-1bit.png", page)}
    # process() does not look at content hashes: a second copy is a second decode.
    paths["page2"] = folder / "page-196mp-1bit-2.png"
    paths["page2"].write_bytes(paths["page"].read_bytes())
    if not quick:
        palette = Image.linear_gradient("L").resize((10000, 10000)).convert("P")
        paths["palette"] = save("palette-100mp.png", palette)
        rgba = Image.linear_gradient("L").resize((8000, 8000)).convert("RGBA")
        paths["rgba"] = save("rgba-64mp.png", rgba)
    return paths


def run_case(tree: Path, files: list[Path], threads: int) -> dict:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(str(f) for f in files), str(threads)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    peak, seconds = done.stdout.split()
    return {"peak_mb": int(peak), "seconds": float(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the Loupe checkout to measure (default: this one)")
    parser.add_argument("--quick", action="store_true", help="the 1-bit page cases only")
    parser.add_argument("--threads", type=int, default=4, help="threads for the side-by-side cases (LOUPE_IMPORT_THREADS)")
    args = parser.parse_args()
    figures = {"tree": str(args.tree)}
    with tempfile.TemporaryDirectory(prefix="loupe-decode-") as tmp:
        log("making images")
        paths = make_images(Path(tmp), args.quick)
        cases = {
            "page alone": ([paths["page"]], 1),
            f"two pages, {args.threads} threads": ([paths["page"], paths["page2"]], args.threads),
        }
        if not args.quick:
            cases["palette alone"] = ([paths["palette"]], 1)
            cases["rgba alone"] = ([paths["rgba"]], 1)
            cases[f"all four, {args.threads} threads"] = ([paths[k] for k in ("page", "page2", "palette", "rgba")], args.threads)
        for name, (files, threads) in cases.items():
            figures[name] = run_case(args.tree, files, threads)
            log(f"{name}: {figures[name]}")
    emit(figures)


if __name__ == "__main__":
    main()
