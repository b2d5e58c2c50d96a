"""Region memory benchmark: peak memory of rendering regions of a 12000x9000 JPEG, now vs before.

    python bench/region_bench.py            # 12000x9000
    python bench/region_bench.py --quick    # 6000x4500

What runs: one photo-like JPEG (bench/import_bench.make_photo, quality 90) is generated once into
bench/.data. Each case renders one region with services.regions.render in a fresh subprocess and
reports that process's peak RSS (VmHWM) minus its RSS just before the render, so interpreter and
import overhead drop out. The baseline is the render() of services/regions.py at git HEAD (read with
`git show`, loaded as a module beside the current one), measured in the same run on the same file;
skip it with --no-baseline once HEAD has the change. Cases: full-resolution 1024x1024 tiles at the
top, middle and bottom, a 2048x2048 area at scale 0.5 in the middle, and the preview.

Figures (the last line is JSON): per case, before_mb, after_mb and ms.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import DATA, ROOT, emit, log

CHILD = r"""
import json, sys, time, importlib.util
sys.path.insert(0, {root!r})
from services import regions as current
module = current
if {module!r}:
    spec = importlib.util.spec_from_file_location("baseline_regions", {module!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])

box = current.Box(*{box!r})
with open({path!r}, "rb") as stream:
    before = status("VmRSS:")
    start = time.perf_counter()
    data = module.render(stream, box)
    ms = (time.perf_counter() - start) * 1000
print(json.dumps({{"mb": (status("VmHWM:") - before) / 1024, "ms": ms, "bytes": len(data)}}))
"""


def measure(path: Path, box: tuple, module: str) -> dict:
    code = CHILD.format(root=str(ROOT), module=module, box=box, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
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
    with tempfile.TemporaryDirectory() as tmp:
        baseline = ""
        if not args.no_baseline:
            baseline = str(Path(tmp) / "regions_head.py")
            source = subprocess.run(["git", "show", "HEAD:services/regions.py"], cwd=ROOT, check=True,
                                    capture_output=True, text=True).stdout
            Path(baseline).write_text(source)
        figures = {"image": f"{width}x{height}"}
        log(f"{'case':<22}{'before MB':>11}{'after MB':>10}{'before ms':>11}{'after ms':>10}")
        for name, box in cases.items():
            after = measure(path, box, "")
            before = measure(path, box, baseline) if baseline else None
            figures[name] = {
                "before_mb": round(before["mb"], 1) if before else None,
                "after_mb": round(after["mb"], 1),
                "before_ms": round(before["ms"]) if before else None,
                "after_ms": round(after["ms"]),
            }
            row = figures[name]
            log(f"{name:<22}{row['before_mb'] or '-':>11}{row['after_mb']:>10}"
                f"{row['before_ms'] or '-':>11}{row['after_ms']:>10}")
    emit(figures)


if __name__ == "__main__":
    main()
