"""Next and previous image in the grid's current filter, by keyset (id order), for the labeling page."""

from core.extensions import db
from models import Dataset, Image, User
from services.images import ImageFilter, filtered_query


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

