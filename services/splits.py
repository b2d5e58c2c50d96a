"""Auto-split: train / validation / test by percentages, deterministic for a seed, stratified by label.

Which images: those of the grid's filter, or a selection of them (image ids), and by default only
the unassigned ones among those (SPEC: an image that has a split keeps it unless asked).

How, in two passes over the images in id order (workers/splits.py), so memory holds one sort key
per image and nothing else:

1. Plan. Each image gets a stratum, the label it carries the most annotations of (ties: the
   lowest label id; none: a stratum of its own). For classification and anomaly datasets that is
   the image's class; for multilabel, detection and segmentation its dominant label, which keeps
   rare classes present in every split without a combinatorial multi-label stratification. Each
   image also gets a sort key, the first 8 bytes of sha256("<seed>:<image id>") (then the id):
   random-looking, the same on every machine and database. In each stratum the images are
   ordered by key and cut by the percentages, the strata taken in a fixed order with cumulative
   rounding, so every split holds exactly round(N x percent) of the N images and each stratum
   within one image of its share. The cuts (the keys where each stratum's train and validation
   parts end) are kept in the job's result.
2. Apply. Each image goes to the split its key falls in for its stratum's cuts, a chunk per
   transaction, the last image done kept beside the cuts, so a re-run continues after it with
   the same plan. An image that changed stratum meanwhile falls in by its key's fraction.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select, update

from core.errors import INT64_MAX, Invalid, NotFound, is_id_list, is_int
from core.extensions import db
from models import Annotation, Dataset, Image, Job, Split, User
from services.images import MAX_BULK, ImageFilter, filtered_query
from services.job_kinds import AUTO_SPLIT
from services.jobs import start_job

SPLITS = ("train", "validation", "test")
CHUNK = 500  # images per transaction
NO_LABEL = ""  # the stratum of images without annotations
KEY_BITS = 64


def check_percentages(train, validation, test) -> dict[str, int]:
    """Whole percentages from 0 to 100 that add up to 100."""
    percentages = {"train": train, "validation": validation, "test": test}
    for name, value in percentages.items():
        if not is_int(value) or not 0 <= value <= 100:
            raise Invalid(f"{name} must be a whole percentage from 0 to 100, got {value!r}", details={"field": name})
    total = sum(percentages.values())
    if total != 100:
        raise Invalid(
            f"train, validation and test must add up to 100; they add up to {total}",
            details={"field": "train", "total": total},
        )
    return percentages


def auto_split(
    dataset: Dataset, user: User, train, validation, test, seed=0, only_unassigned: bool = True,
    f: ImageFilter | None = None, image_ids=None,
) -> Job:
    """Start the job that splits the images of the filter (or of the selection among them)."""
    percentages = check_percentages(train, validation, test)
    if not is_int(seed, INT64_MAX):
        raise Invalid("seed must be a whole number (64-bit)", details={"field": "seed"})
    if not isinstance(only_unassigned, bool):
        raise Invalid("only_unassigned must be true or false", details={"field": "only_unassigned"})
    f = (f or ImageFilter()).validate()
    if image_ids is not None:
        image_ids = _selection(dataset, image_ids)
    query = candidates(dataset, user, f, image_ids, only_unassigned)
    upto = db.session.scalar(query.with_only_columns(func.max(Image.id))) or 0
    total = db.session.scalar(select(func.count()).select_from(query.with_only_columns(Image.id).subquery()))
    shares = "/".join(str(percentages[s]) for s in SPLITS)
    return start_job(
        AUTO_SPLIT, dataset.id, user.id, percentages, seed, only_unassigned, f.args(), image_ids, upto,
        dataset=dataset, user=user, total=total, message=f"Waiting for a worker to split {total:,} images {shares}",
    )


def _selection(dataset: Dataset, image_ids) -> list[int]:
    if not is_id_list(image_ids, INT64_MAX) or not image_ids:
        raise Invalid("image_ids must be a non-empty list of image ids", details={"field": "image_ids"})
    if len(image_ids) > MAX_BULK:
        raise Invalid(f"At most {MAX_BULK} selected images; send the filter instead for more", details={"field": "image_ids"})
    ids = sorted(set(image_ids))
    found = set(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"Images not in this dataset: {', '.join(map(str, missing[:20]))}", details={"image_ids": missing[:100]})
    return ids


def candidates(dataset: Dataset, user: User, f: ImageFilter, image_ids: list[int] | None, only_unassigned: bool):
    """A select(Image) of the images an auto-split may move: the filter's (the grid's meaning of
    it), within the selection if any, unassigned ones only unless asked otherwise."""
    query = filtered_query(dataset, user, f)
    if image_ids is not None:
        query = query.where(Image.id.in_(image_ids))
    if only_unassigned:
        query = query.where(Image.split == Split.unassigned)
    return query


def candidate_ids(query, after: int, upto: int) -> list[int]:
    """The next chunk of candidate ids, in id order."""
    return list(db.session.scalars(
        query.with_only_columns(Image.id).where(Image.id > after, Image.id <= upto).order_by(Image.id).limit(CHUNK)
    ))


def sort_key(seed: int, image_id: int) -> int:
    """The image's place in its stratum's shuffled order: 8 bytes of sha256("seed:id"), then the id."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") << KEY_BITS) | image_id


def strata_of(image_ids: list[int]) -> dict[int, str]:
    """Each image's stratum: the label id (as text) it has the most annotations of, lowest id on a tie."""
    best: dict[int, tuple[int, int]] = {}
    for image_id, label_id, n in db.session.execute(
        select(Annotation.image_id, Annotation.label_id, func.count())
        .where(Annotation.image_id.in_(image_ids)).group_by(Annotation.image_id, Annotation.label_id)
    ):
        current = best.get(image_id)
        if current is None or (n, -label_id) > (current[0], -current[1]):
            best[image_id] = (n, label_id)
    return {image_id: str(best[image_id][1]) if image_id in best else NO_LABEL for image_id in image_ids}


def _rounded(count: int, percent: int) -> int:
    """round(count x percent / 100), halves up, in integers."""
    return (count * percent * 2 + 100) // 200


def plan_cuts(keys_by_stratum: dict[str, list[int]], percentages: dict[str, int]) -> dict[str, list[str | None]]:
    """Per stratum, the keys where its train part and its validation part end (None: at the end).

    Sorts each stratum's keys in place.
    """
    train, train_validation = percentages["train"], percentages["train"] + percentages["validation"]
    cuts, before = {}, 0
    for stratum in sorted(keys_by_stratum):
        keys = keys_by_stratum[stratum]
        keys.sort()
        after = before + len(keys)
        ends = (_rounded(after, train) - _rounded(before, train), _rounded(after, train_validation) - _rounded(before, train_validation))
        # Keys as text: they are 128-bit, beyond what a JSON client reads exactly.
        cuts[stratum] = [str(keys[end]) if end < len(keys) else None for end in ends]
        before = after
    return cuts


def split_for(key: int, cuts: list[str | None] | None, percentages: dict[str, int]) -> str:
    """The split an image's key falls in, by its stratum's cuts (or, without any, by the key's fraction)."""
    if cuts is None:
        position = (key >> KEY_BITS) * 100
        bounds = [percentages["train"] << KEY_BITS, (percentages["train"] + percentages["validation"]) << KEY_BITS]
    else:
        position, bounds = key, [int(c) if c is not None else None for c in cuts]
    for split, bound in zip(SPLITS, bounds):
        if bound is None or position < bound:
            return split
    return "test"


def apply_chunk(dataset: Dataset, image_ids: list[int], seed: int, cuts: dict, percentages: dict[str, int], only_unassigned: bool) -> dict[str, int]:
    """Put one chunk of candidates in their splits; how many went to each. An image given a split
    by someone else since the plan is left alone when only unassigned ones were asked for."""
    strata = strata_of(image_ids)
    by_split: dict[str, list[int]] = {}
    for image_id in image_ids:
        split = split_for(sort_key(seed, image_id), cuts.get(strata[image_id]), percentages)
        by_split.setdefault(split, []).append(image_id)
    assigned = {}
    for split, ids in by_split.items():
        query = update(Image).where(Image.dataset_id == dataset.id, Image.id.in_(ids))
        if only_unassigned:
            query = query.where(Image.split == Split.unassigned)
        assigned[split] = db.session.execute(query.values(split=Split(split)).execution_options(synchronize_session=False)).rowcount
    return assigned
