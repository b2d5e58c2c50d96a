"""Where the labeling page is in the grid's current filter, by keyset (id order): next and previous,
"n of N", and the next image nobody has labeled yet."""

from dataclasses import dataclass, replace

from sqlalchemy import func, select, tuple_

from core.extensions import db
from models import Dataset, Image, ImageState, User
from services.images import ImageFilter, count_images, filtered_query

# The most ids "n of N" counts: a few milliseconds of index. Beyond, the place is estimated.
EXACT_UP_TO = 20_000


def neighbours(dataset: Dataset, user: User, f: ImageFilter, image_id: int) -> tuple[int | None, int | None]:
    """The ids of the previous and next images the user may see that match the filter (None at an end).

    Each side is one index range read on (dataset_id, <filter column>, id): next is the smallest
    id above the current one, previous the largest below it.
    """
    f.validate()
    query = filtered_query(dataset, user, f).with_only_columns(Image.id)
    next_id = db.session.scalar(query.where(Image.id > image_id).order_by(Image.id).limit(1))
    previous_id = db.session.scalar(query.where(Image.id < image_id).order_by(Image.id.desc()).limit(1))
    return previous_id, next_id


@dataclass(frozen=True)
class Position:
    """The image's place in the filter, counted from 1 in id order (None: it does not match the
    filter, e.g. just labeled under "unlabeled"), how many images match, and whether the place was
    counted (else it is estimated, in a large filter far from both ends)."""

    place: int | None
    total: int
    exact: bool = True


def position(dataset: Dataset, user: User, f: ImageFilter, image_id: int) -> Position:
    """Where the image is in the filter ("n of N").

    The place is an index range count of the ids before the image. In a large filter it counts
    the side with fewer ids instead (guessed from where the id lies between the dataset's first
    and last), and at most EXACT_UP_TO of them: further from both ends, the place is estimated
    from the ids, so a page in the middle of a million images still costs a few index reads.
    """
    f.validate()
    total = count_images(dataset, user, f)
    ids = filtered_query(dataset, user, f).with_only_columns(Image.id)
    if db.session.scalar(ids.where(Image.id == image_id)) is None:
        return Position(None, total)

    def clamp(place: int) -> int:  # within 1..total even while a counter is off (refresh-counters fixes it)
        return min(max(place, 1), max(total, 1))

    if total <= EXACT_UP_TO:
        return Position(clamp(_count(ids.where(Image.id < image_id)) + 1), total)
    first, last = _id_span(dataset)
    before = image_id - first <= last - image_id
    side = ids.where(Image.id < image_id) if before else ids.where(Image.id > image_id)
    counted = _count(side.limit(EXACT_UP_TO + 1))
    if counted <= EXACT_UP_TO:
        return Position(clamp(counted + 1 if before else total - counted), total)
    share = (image_id - first) / max(last - first, 1)
    return Position(clamp(round(share * (total - 1)) + 1), total, exact=False)


def _count(ids) -> int:
    return db.session.scalar(select(func.count()).select_from(ids.subquery()))


def _id_span(dataset: Dataset) -> tuple[int, int]:
    """The dataset's smallest and largest image ids, each one read of its (dataset_id, id) index.

    Row comparisons, so the planner cannot turn them into a primary-key walk (services/images.py).
    """
    key = tuple_(Image.dataset_id, Image.id)
    first = db.session.scalar(
        select(Image.id).where(key > tuple_(dataset.id, 0), Image.dataset_id <= dataset.id).order_by(Image.dataset_id, Image.id).limit(1)
    )
    last = db.session.scalar(
        select(Image.id).where(key < tuple_(dataset.id + 1, 0), Image.dataset_id >= dataset.id)
        .order_by(Image.dataset_id.desc(), Image.id.desc()).limit(1)
    )
    return first or 0, last or 0


def next_unlabeled(dataset: Dataset, user: User, f: ImageFilter, image_id: int) -> int | None:
    """The next unlabeled image of the filter after this one, wrapping round to the first; None if none.

    A filter on another state has no unlabeled images. One index range read on (dataset_id, state, id).
    """
    f.validate()
    if f.state and f.state != ImageState.unlabeled.value:
        return None
    query = filtered_query(dataset, user, replace(f, state=ImageState.unlabeled.value)).with_only_columns(Image.id)
    after = db.session.scalar(query.where(Image.id > image_id).order_by(Image.id).limit(1))
    if after is not None:
        return after
    return db.session.scalar(query.where(Image.id < image_id).order_by(Image.id).limit(1))
