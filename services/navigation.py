"""Where the labeling page is in the grid's current filter, by keyset (id order): next and previous,
"n of N", and the next image nobody has labeled yet."""

from dataclasses import dataclass, replace

from sqlalchemy import Select, bindparam, func, select, tuple_

from core.extensions import db
from core.permissions import sees_all_images
from models import Dataset, Image, ImageState, User
from services.images import ImageFilter, filtered_query, kept_count

# The most ids "n of N" counts: a few milliseconds of index. Beyond, the place is estimated.
EXACT_UP_TO = 20_000


@dataclass(frozen=True)
class Position:
    """The image's place in the filter, counted from 1 in id order (None: it does not match the
    filter, e.g. just labeled under "unlabeled"), how many images match, and whether the place was
    counted (else it is estimated, in a large filter far from both ends)."""

    place: int | None
    total: int
    exact: bool = True


@dataclass(frozen=True)
class Place:
    """The ids of the previous, next and next unlabeled images (None: there is none) and the position."""

    previous_id: int | None
    next_id: int | None
    next_unlabeled_id: int | None
    position: Position


def locate(dataset: Dataset, user: User, f: ImageFilter, image_id: int) -> Place:
    """Where the image is among those the user may see that match the filter, in one statement.

    Every part is an index range read on (dataset_id, <filter column>, id), asked as a scalar
    subquery of that one SELECT (each page of the canvas asks all of them):
    - previous and next: the largest id below the image's, the smallest above it;
    - next unlabeled: the smallest unlabeled id above the image's, else (wrapping round) the
      smallest below it; a filter on another state has none;
    - "n of N": the total (from the dataset's counter when unfiltered), and the place, a count of
      the ids before the image of at most EXACT_UP_TO + 1 of them. Further in, see `_far_position`.
    """
    f.validate()
    kept = kept_count(dataset, user, f)
    # A larger counter: the place is far from the start more often than not.
    query = _locate_query(dataset, user, f, with_total=kept is None, with_before=kept is None or kept <= EXACT_UP_TO)
    row = db.session.execute(query, {"image_id": image_id}).one()._mapping
    total = kept if kept is not None else row["total"]
    if not row["here"]:
        position = Position(None, total)
    elif row.get("before") is not None and row["before"] <= EXACT_UP_TO:
        position = Position(_clamp(row["before"] + 1, total), total)
    else:
        position = _far_position(dataset, filtered_query(dataset, user, f).with_only_columns(Image.id), image_id, total)
    return Place(row["previous_id"], row["next_id"], row.get("next_unlabeled_id"), position)


# `locate`'s statements by dataset, viewer and filter, with the image's id bound at execution: a
# person walks one filter image after image, and building the statement and its cache key costs
# more CPU than PostgreSQL spends running it. At most _MAX_QUERIES, then they are built afresh.
_QUERIES: dict[tuple, Select] = {}
_MAX_QUERIES = 1000


def _locate_query(dataset: Dataset, user: User, f: ImageFilter, with_total: bool, with_before: bool) -> Select:
    """The statement of `locate` (see there), kept unless the filter names a folder: the folder's
    id is read while building it, and a folder can be made again under the same path."""
    sees_all = sees_all_images(user, dataset)
    key = (dataset.id, None if sees_all else user.id, tuple(f.args().items()), with_total, with_before, EXACT_UP_TO)
    query = _QUERIES.get(key)
    if query is not None:
        return query
    image_id = bindparam("image_id")
    ids = filtered_query(dataset, user, f).with_only_columns(Image.id)
    columns = [
        ids.where(Image.id < image_id).order_by(Image.id.desc()).limit(1).scalar_subquery().label("previous_id"),
        ids.where(Image.id > image_id).order_by(Image.id).limit(1).scalar_subquery().label("next_id"),
        ids.where(Image.id == image_id).exists().label("here"),
    ]
    if not f.state or f.state == ImageState.unlabeled.value:
        unlabeled = filtered_query(dataset, user, replace(f, state=ImageState.unlabeled.value)).with_only_columns(Image.id)
        # COALESCE evaluates its second subquery only when the first finds nothing.
        columns.append(func.coalesce(
            unlabeled.where(Image.id > image_id).order_by(Image.id).limit(1).scalar_subquery(),
            unlabeled.where(Image.id < image_id).order_by(Image.id).limit(1).scalar_subquery(),
        ).label("next_unlabeled_id"))
    if with_total:
        columns.append(_count(ids).label("total"))
    if with_before:
        columns.append(_count(ids.where(Image.id < image_id).limit(EXACT_UP_TO + 1)).label("before"))
    query = select(*columns)
    if not f.folder:
        if len(_QUERIES) >= _MAX_QUERIES:
            _QUERIES.clear()
        _QUERIES[key] = query
    return query


def _clamp(place: int, total: int) -> int:
    """Within 1..total even while a counter is off (refresh-counters fixes it)."""
    return min(max(place, 1), max(total, 1))


def _far_position(dataset: Dataset, ids, image_id: int, total: int) -> Position:
    """The place of an image that may lie more than EXACT_UP_TO ids from the start of its filter.

    It counts the side with fewer ids instead (guessed from where the id lies between the
    dataset's first and last), and at most EXACT_UP_TO of them: further from both ends, the place
    is estimated from the ids, so a page in the middle of a million images still costs a few
    index reads.
    """
    first, last = _id_span(dataset)
    before = image_id - first <= last - image_id
    side = ids.where(Image.id < image_id) if before else ids.where(Image.id > image_id)
    counted = db.session.scalar(select(_count(side.limit(EXACT_UP_TO + 1))))
    if counted <= EXACT_UP_TO:
        return Position(_clamp(counted + 1 if before else total - counted, total), total)
    share = (image_id - first) / max(last - first, 1)
    return Position(_clamp(round(share * (total - 1)) + 1, total), total, exact=False)


def _count(ids):
    return select(func.count()).select_from(ids.subquery()).scalar_subquery()


def _id_span(dataset: Dataset) -> tuple[int, int]:
    """The dataset's smallest and largest image ids, each one read of its (dataset_id, id) index.

    Row comparisons, so the planner cannot turn them into a primary-key walk (services/images.py).
    """
    key = tuple_(Image.dataset_id, Image.id)
    first = select(Image.id).where(key > tuple_(dataset.id, 0), Image.dataset_id <= dataset.id).order_by(Image.dataset_id, Image.id).limit(1)
    last = (
        select(Image.id).where(key < tuple_(dataset.id + 1, 0), Image.dataset_id >= dataset.id)
        .order_by(Image.dataset_id.desc(), Image.id.desc()).limit(1)
    )
    row = db.session.execute(select(first.scalar_subquery(), last.scalar_subquery())).one()
    return row[0] or 0, row[1] or 0
