"""COCO's run-length masks as Loupe polygons, and several polygon parts as one polygon, in pure Python.

A COCO object is one annotation in Loupe, whatever its segmentation, so an object drawn in parts
(several polygons, or a mask of several blobs) becomes ONE polygon: the parts are joined by
zero-width bridges, each walked once out and once back. A bridge adds no area under either fill
rule, so the polygon fills the same pixels as the parts did (their union, as annToMask() gives,
once the parts share an orientation and do not overlap).

A mask is traced on pixel corners: the outer boundary of each 4-connected blob, with collinear
points removed. Holes are filled (Loupe's polygons have none), and a blob inside another's hole is
then covered and dropped. The tracing works on the mask's runs, never on a pixel array, so its
time and memory follow the number of runs, not the image's size. An outline of more points than a
Loupe polygon holds (services.shapes.MAX_POINTS: a large mask's staircase edges) is simplified
(Douglas-Peucker) with the smallest tolerance, from half a pixel, that makes it fit.
"""

from __future__ import annotations

from bisect import bisect_right

from core.errors import is_finite_number
from services.shapes import MAX_POINTS

# h x w above this is refused: a 200-megapixel mask is past any photo Loupe stores.
MAX_MASK_PIXELS = 200_000_000
# Column pieces of the foreground (each run split at column ends): the tracer's working set.
MAX_PIECES = 1_000_000
# A traced outline past MAX_POINTS is simplified with a tolerance from half a pixel, doubled up to this.
MAX_TOLERANCE = 16.0


class MaskProblem(ValueError):
    """A segmentation that cannot be turned into a polygon (the message says why)."""


def rle_mask(segmentation: dict) -> tuple[int, int, list[int]]:
    """(height, width, counts) of a COCO RLE {"size": [h, w], "counts": [...] or "..."}, checked."""
    size, counts = segmentation.get("size"), segmentation.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(type(n) is int and n > 0 for n in size)):
        raise MaskProblem("RLE size must be [height, width], two positive integers")
    height, width = size
    if height * width > MAX_MASK_PIXELS:
        raise MaskProblem(f"RLE mask of {height}x{width} pixels is over the limit of {MAX_MASK_PIXELS:,}")
    if isinstance(counts, str):
        counts = decode_counts(counts)
    elif not (isinstance(counts, list) and all(type(n) is int for n in counts)):
        raise MaskProblem("RLE counts must be a list of integers or a compressed string")
    if any(n < 0 for n in counts):
        raise MaskProblem("RLE counts must not be negative")
    total = sum(counts)
    if total != height * width:
        raise MaskProblem(f"RLE counts add up to {total} pixels, not {height}x{width} = {height * width}")
    return height, width, counts


def decode_counts(text: str) -> list[int]:
    """The run lengths of a compressed RLE string (pycocotools' rleFrString): six bits a character
    from "0", five of value and a continuation bit, sign-extended; from the third run on, each value
    is the difference from the run two before."""
    counts: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            raise MaskProblem(f"RLE counts hold a character {char!r} that compressed RLE never writes")
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if shift:
        raise MaskProblem("RLE counts end in the middle of a number")
    return counts


def mask_polygon(height: int, width: int, counts: list[int]) -> list[list[int]]:
    """One polygon (pixel-corner vertices [x, y]) covering a column-major RLE mask's blobs, holes filled."""
    columns = _columns(height, counts)
    if not columns:
        raise MaskProblem("RLE mask is empty")
    outer = [loop for loop in _trace(columns) if _twice_area(loop) > 0]
    # Each blob takes four points at least, and each bridge two.
    if 6 * len(outer) - 2 > MAX_POINTS:
        raise MaskProblem(f"RLE mask of {len(outer)} blobs does not fit in a polygon of {MAX_POINTS} points")
    outer = _uncovered(outer)
    # Left to right, so that each bridge reaches the next blob over rather than across the image.
    outer.sort(key=lambda loop: min(loop))
    return [list(point) for point in join_parts(_fitted(outer))]


def join_parts(parts: list[list[tuple]]) -> list[tuple]:
    """Several closed polygons as one, each joined to the next by a zero-width bridge between their
    nearest vertices. The caller gives the parts one orientation (orient()) for the union to fill."""
    joined = list(parts[-1])
    for part in reversed(parts[:-1]):
        # `joined` starts at the vertex the bridge from `part` lands on.
        target = joined[0]
        i = min(range(len(part)), key=lambda k: (part[k][0] - target[0]) ** 2 + (part[k][1] - target[1]) ** 2)
        joined = [*part[: i + 1], *joined, joined[0], *part[i:]]
    return joined


def orient(points: list[tuple]) -> list[tuple]:
    """The polygon with its vertices in the order of increasing y-down angle (positive shoelace sum)."""
    return points if _twice_area(points) >= 0 else points[::-1]


def polygon_parts(segmentation: list) -> list[list[tuple]]:
    """The parts of a COCO polygon segmentation [[x1, y1, x2, y2, ...], ...] as vertex lists, checked."""
    parts = []
    for j, flat in enumerate(segmentation):
        if not isinstance(flat, list):
            raise MaskProblem(f"polygon part {j} must be a list of coordinates")
        if len(flat) % 2 or len(flat) < 6:
            raise MaskProblem(f"polygon part {j} must hold x, y pairs of at least 3 points, not {len(flat)} numbers")
        if not all(is_finite_number(c) for c in flat):
            raise MaskProblem(f"polygon part {j} holds a coordinate that is not a finite number")
        parts.append(list(zip(flat[0::2], flat[1::2])))
    return parts


def _fitted(loops: list[list[tuple[int, int]]]) -> list[list[tuple]]:
    """The loops, simplified just enough that joined they fit in MAX_POINTS (each bridge adds two)."""
    tolerance, fitted = 0.5, loops
    while sum(map(len, fitted)) + 2 * (len(loops) - 1) > MAX_POINTS:
        if tolerance > MAX_TOLERANCE:
            raise MaskProblem(f"RLE mask of {len(loops)} blobs does not fit in a polygon of {MAX_POINTS} points")
        fitted = [_simplified(loop, tolerance) for loop in loops]
        tolerance *= 2
    return fitted


def _simplified(loop: list[tuple[int, int]], tolerance: float) -> list[tuple[int, int]]:
    """A closed loop through fewer of its vertices, none of the dropped ones further than
    `tolerance` from it (Douglas-Peucker on the two halves between the first vertex and the
    vertex furthest from it); a blob too small to keep three is left as it is."""
    x0, y0 = loop[0]
    far = max(range(len(loop)), key=lambda k: (loop[k][0] - x0) ** 2 + (loop[k][1] - y0) ** 2)
    closed = loop + loop[:1]
    kept = {0, far, len(loop)}
    stack = [(0, far), (far, len(loop))]
    while stack:
        first, last = stack.pop()
        (ax, ay), (bx, by) = closed[first], closed[last]
        length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
        worst, at, middle = 0.0, None, (first + last) / 2
        for k in range(first + 1, last):
            px, py = closed[k]
            distance = abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length
            # On a pixel grid many vertices tie; splitting at the middlemost keeps the halves even
            # (splitting at the first would make a staircase quadratic).
            if distance > worst or (distance == worst and at is not None and abs(k - middle) < abs(at - middle)):
                worst, at = distance, k
        if at is not None and worst > tolerance:
            kept.add(at)
            stack += [(first, at), (at, last)]
    points = [closed[k] for k in sorted(kept - {len(loop)})]
    return points if len(points) >= 3 else loop


def _columns(height: int, counts: list[int]) -> dict[int, list[tuple[int, int]]]:
    """The foreground as column -> [(y0, y1), ...] maximal intervals, from runs that alternate
    background, foreground, ... down each column in turn (COCO's column-major order)."""
    columns: dict[int, list[tuple[int, int]]] = {}
    pieces, position = 0, 0
    for index, run in enumerate(counts):
        start, position = position, position + run
        while index % 2 and start < position:
            x, y0 = divmod(start, height)
            y1 = min(height, y0 + position - start)
            column = columns.setdefault(x, [])
            # A zero-length background run between two foreground runs: they are one interval.
            if column and column[-1][1] == y0:
                column[-1] = (column[-1][0], y1)
            else:
                column.append((y0, y1))
                pieces += 1
                if pieces > MAX_PIECES:
                    raise MaskProblem(f"RLE mask has over {MAX_PIECES:,} runs: too complex to trace")
            start += y1 - y0
    return columns


def _trace(columns: dict[int, list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    """Every boundary loop of the foreground, walked with the foreground on the right (y down):
    outer boundaries have a positive shoelace sum, holes a negative one."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def edge(a, b):
        out.setdefault(a, []).append(b)

    for x, intervals in columns.items():
        for y0, y1 in intervals:
            edge((x, y0), (x + 1, y0))
            edge((x + 1, y1), (x, y1))
    for x in sorted(set(columns) | {x + 1 for x in columns}):
        left, right = columns.get(x - 1, ()), columns.get(x, ())
        # Split at every interval end on either side, so that each vertex a horizontal edge
        # starts or ends at is a vertex of the vertical edges too.
        ys = sorted({y for interval in left for y in interval} | {y for interval in right for y in interval})
        i = j = 0
        for a, b in zip(ys, ys[1:]):
            while i < len(left) and left[i][1] <= a:
                i += 1
            while j < len(right) and right[j][1] <= a:
                j += 1
            in_left = i < len(left) and left[i][0] <= a
            in_right = j < len(right) and right[j][0] <= a
            if in_left and not in_right:
                edge((x, a), (x, b))
            elif in_right and not in_left:
                edge((x, b), (x, a))
    loops = []
    while out:
        start, ends = next(iter(out.items()))
        first = ends.pop()
        if not ends:
            del out[start]
        loop, previous, current = [start], start, first
        while True:
            options = out.get(current, [])
            choices = options + [first] if current == start else options
            chosen = _right_turn(previous, current, choices)
            if current == start and chosen == first:
                break
            options.remove(chosen)
            if not options:
                del out[current]
            loop.append(current)
            previous, current = current, chosen
        loops.append(_without_collinear(loop))
    return loops


def _direction(a, b) -> tuple[int, int]:
    return (b[0] > a[0]) - (b[0] < a[0]), (b[1] > a[1]) - (b[1] < a[1])


def _right_turn(previous, current, choices):
    """Where two blobs touch at a corner only, the walk turns right (keeping to its own blob), so
    that diagonal neighbours are separate blobs and no loop crosses itself."""
    if len(choices) == 1:
        return choices[0]
    dx, dy = _direction(previous, current)
    return next(c for c in choices if _direction(current, c) == (-dy, dx))


def _without_collinear(loop: list[tuple[int, int]]) -> list[tuple[int, int]]:
    n = len(loop)
    return [p for k, p in enumerate(loop) if _direction(loop[k - 1], p) != _direction(p, loop[(k + 1) % n])]


def _twice_area(points) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))


def _uncovered(loops: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    """The loops not inside another loop (blobs in a filled hole)."""
    boxes = [_bounds(loop) for loop in loops]
    crossings: dict[int, dict[int, list[int]]] = {}
    kept = []
    for i, loop in enumerate(loops):
        x, y = _pixel_in(loop)
        for j, other in enumerate(loops):
            if j != i and _within(boxes[i], boxes[j]):
                if j not in crossings:
                    crossings[j] = _crossings(other)
                xs = crossings[j].get(int(y), ())
                if (len(xs) - bisect_right(xs, x)) % 2:
                    break
        else:
            kept.append(loop)
    return kept


def _crossings(loop: list[tuple[int, int]]) -> dict[int, list[int]]:
    """Pixel row -> the x of each vertical edge of the loop that crosses it, in order: a point's
    inside test is then a count of the crossings to its right."""
    rows: dict[int, list[int]] = {}
    for (x0, y0), (x1, y1) in zip(loop, loop[1:] + loop[:1]):
        if x0 == x1:
            for y in range(min(y0, y1), max(y0, y1)):
                rows.setdefault(y, []).append(x0)
    for xs in rows.values():
        xs.sort()
    return rows


def _bounds(loop):
    xs, ys = [p[0] for p in loop], [p[1] for p in loop]
    return min(xs), min(ys), max(xs), max(ys)


def _within(inner, outer) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _pixel_in(loop: list[tuple[int, int]]) -> tuple[float, float]:
    """The centre of a pixel of the loop's blob: below its first left-to-right (top) edge, and off
    every edge, so that the inside test has no ties."""
    for a, b in zip(loop, loop[1:] + loop[:1]):
        if b[1] == a[1] and b[0] > a[0]:
            return a[0] + 0.5, a[1] + 0.5
    raise AssertionError("an outer loop has a top edge")

