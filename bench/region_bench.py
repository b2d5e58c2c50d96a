"""Region memory benchmark: peak memory of rendering regions of a 12000x9000 JPEG, vs a naive render.

    python bench/region_bench.py            # 12000x9000
    python bench/region_bench.py --quick    # 6000x4500

What runs: one photo-like JPEG (bench/import_bench.make_photo, quality 90) is generated once into
bench/.data. Each case renders one region with services.regions.render in a fresh subprocess and
reports that process's peak RSS (VmHWM) minus its RSS just before the render, so interpreter and
import overhead drop out. The baseline is the naive render measured in the same run on the same
file: decode the whole image with Pillow, crop, resize to the output size. Cases: full-resolution 1024x1024 tiles at the
top, middle and bottom, a 2048x2048 area at scale 0.5 in the middle, and the preview.

Figures (the last line is JSON): per case, naive_mb, loupe_mb, naive_ms, loupe_ms.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import DATA, ROOT, emit, log

CHILD = r"""
import io, json, sys, time
sys.path.insert(0, {root!r})
from PIL import Image
from services import regions


# Decode everything, then crop and resize: a region server without draft() or row limits.
def naive(stream, box):
    image = Image.open(stream)
    image.load()
    crop = image.crop((box.x, box.y, box.x + box.width, box.y + box.height)).resize((box.out_width, box.out_height))
    out = io.BytesIO()
    crop.save(out, "JPEG", quality=regions.QUALITY)
    return out.getvalue()


render = naive if {naive!r} else regions.render

def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])

box = regions.Box(*{box!r})
with open({path!r}, "rb") as stream:
    before = status("VmRSS:")
    start = time.perf_counter()
    data = render(stream, box)
    ms = (time.perf_counter() - start) * 1000
print(json.dumps({{"mb": (status("VmHWM:") - before) / 1024, "ms": ms, "bytes": len(data)}}))
"""


def measure(path: Path, box: tuple, naive: bool) -> dict:
    code = CHILD.format(root=str(ROOT), naive=naive, box=box, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    width, height = (6000, 4500) if args.quick else (12000, 9000)

    from import_bench import make_photo

    from services.imaging import fit

    DATA.mkdir(exist_ok=True)
    path = DATA / f"region_{width}x{height}.jpg"
    if not path.exists():
        log(f"generating {path.name} ...")
        path.write_bytes(make_photo(7, width, height))
    log(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, {width * height * 3 / 2**20:.0f} MiB decoded")

    tile = 1024
    cases = {
        "top_full_res": (width // 2 - tile // 2, 0, tile, tile, tile, tile),
        "middle_full_res": (width // 2 - tile // 2, height // 2 - tile // 2, tile, tile, tile, tile),
        "bottom_full_res": (width // 2 - tile // 2, height - tile, tile, tile, tile, tile),
        "middle_2048_at_0.5": (width // 2 - 1024, height // 2 - 1024, 2048, 2048, 1024, 1024),
        "preview": (0, 0, width, height, *fit(width, height, 2048)),
    }
    figures = {"image": f"{width}x{height}"}
    log(f"{'case':<22}{'naive MB':>10}{'Loupe MB':>10}{'naive ms':>10}{'Loupe ms':>10}")
    for name, box in cases.items():
        loupe, baseline = measure(path, box, naive=False), measure(path, box, naive=True)
        row = figures[name] = {
            "naive_mb": round(baseline["mb"], 1), "loupe_mb": round(loupe["mb"], 1),
            "naive_ms": round(baseline["ms"]), "loupe_ms": round(loupe["ms"]),
        }
        log(f"{name:<22}{row['naive_mb']:>10}{row['loupe_mb']:>10}{row['naive_ms']:>10}{row['loupe_ms']:>10}")
    emit(figures)


if __name__ == "__main__":
    main()
