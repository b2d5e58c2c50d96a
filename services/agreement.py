"""How much labelers agree on an image: the score the reviewer sees beside their versions, and the
agreement statistic of a task and its members (SPEC section 6, Workforce quality).

Two versions agree on a class (a whole-image tag) when they name the same classes; on shapes,
when they can be paired one to one, same label, overlapping by at least MATCH_IOU (intersection
over union of the enclosed areas; of the bounding boxes for lines and points). A version pair's
score is what matched over what either has (1.0 when both are empty); an image's is the mean over
its pairs of versions.
"""

from itertools import combinations

from PIL import Image as PILImage
from PIL import ImageDraw

from services.shapes import AREA_SHAPES, bbox, outline

MATCH_IOU = 0.5
GRID = 128  # the raster two area shapes are compared on: their joint bounding box, this many cells a side


def _box_iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else float(a == b)


def _mask(shape: str, geometry: dict, left: float, top: float, scale: float) -> PILImage.Image:
    mask = PILImage.new("1", (GRID, GRID), 0)
    ImageDraw.Draw(mask).polygon([((x - left) * scale, (y - top) * scale) for x, y in outline(shape, geometry)], fill=1)
    return mask


def shape_iou(a: dict, b: dict) -> float:
    """Intersection over union of two annotations' shapes."""
    box_a, box_b = bbox(a["shape"], a["geometry"]), bbox(b["shape"], b["geometry"])
    if a["shape"] == b["shape"] == "box" or not (a["shape"] in AREA_SHAPES and b["shape"] in AREA_SHAPES):
        return _box_iou(box_a, box_b)
    if _box_iou(box_a, box_b) == 0:
        return 0.0
    left, top = min(box_a[0], box_b[0]), min(box_a[1], box_b[1])
    side = max(box_a[0] + box_a[2], box_b[0] + box_b[2]) - left, max(box_a[1] + box_a[3], box_b[1] + box_b[3]) - top
    scale = (GRID - 1) / max(side[0], side[1], 1e-9)
    # Mode "1" packs eight cells a byte (GRID is a multiple of 8): count the set bits.
    cells = list(zip(*(_mask(x["shape"], x["geometry"], left, top, scale).tobytes() for x in (a, b))))
    inter = sum((p & q).bit_count() for p, q in cells)
    union = sum((p | q).bit_count() for p, q in cells)
    return inter / union if union else 0.0


def matches(a: list[dict], b: list[dict]) -> list[tuple[int, int, float]]:
    """Pairs (index in a, index in b, IoU) of same-label shapes, best overlap first, each used once."""
    candidates = sorted(
        ((shape_iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
         if x["shape"] != "tag" and y["shape"] != "tag" and x["label_id"] == y["label_id"]),
        reverse=True,
    )
    used_a, used_b, pairs = set(), set(), []
    for iou, i, j in candidates:
        if iou >= MATCH_IOU and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, iou))
    return pairs


def pair_score(a: list[dict], b: list[dict]) -> float:
    """Agreement of two versions of an image, from 0 to 1."""
    tags_a = {x["label_id"] for x in a if x["shape"] == "tag"}
    tags_b = {x["label_id"] for x in b if x["shape"] == "tag"}
    shapes_a = [x for x in a if x["shape"] != "tag"]
    shapes_b = [x for x in b if x["shape"] != "tag"]
    agreed = len(matches(shapes_a, shapes_b)) + (1 if (tags_a or tags_b) and tags_a == tags_b else 0)
    either = max(len(shapes_a), len(shapes_b)) + (1 if tags_a or tags_b else 0)
    return agreed / either if either else 1.0


def image_score(versions: list[list[dict]]) -> float | None:
    """The mean agreement over every pair of versions; None with fewer than two."""
    pairs = list(combinations(versions, 2))
    return sum(pair_score(a, b) for a, b in pairs) / len(pairs) if pairs else None


def merged(versions: list[list[dict]]) -> list[dict]:
    """One annotation set from several: the first version's shapes, then each later version's
    shapes that match none already kept; the classes every version names."""
    kept: list[dict] = []
    for version in versions:
        shapes = [x for x in version if x["shape"] != "tag"]
        taken = {j for _, j, _ in matches([x for x in kept if x["shape"] != "tag"], shapes)}
        kept += [x for j, x in enumerate(shapes) if j not in taken]
    common = set.intersection(*({x["label_id"] for x in v if x["shape"] == "tag"} for v in versions)) if versions else set()
    tags = {x["label_id"]: x for v in versions for x in v if x["shape"] == "tag" and x["label_id"] in common}
    return list(tags.values()) + kept
