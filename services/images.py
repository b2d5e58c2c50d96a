"""Images: uploading into the ledger, the grid's keyset pages, and bulk changes."""

import posixpath
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app
from sqlalchemy import Select, delete, exists, func, literal, select, tuple_, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from core.errors import INT64_MAX, Conflict, Invalid, NotFound, is_id_list, parse_choice, parse_int
from core.extensions import db
from core.files import clean_file_name
from core.permissions import sees_all_images, visible_images
from core.storage import TooLarge, get_storage
from models import (
    Annotation,
    Assignment,
    Dataset,
    Folder,
    Image,
    ImageState,
    ImageTag,
    ImportItem,
    ImportItemStatus,
    Job,
    Label,
    Split,
    Tag,
    Upload,
    User,
)
from models.image import thumbnail_key_for
from services import imaging
from services.job_kinds import IMPORT
from services.jobs import refuse_while_deleting, start_job

PAGE = 100
MAX_NAME = 255
MAX_BULK = 1000
MAX_TAG_NAME = 100  # Tag.name's column width
MAX_TAGS_PER_IMAGE = 100


def parse_split(value) -> Split:
    return parse_choice(Split, value, "split", "split")


def parse_state(value) -> ImageState:
    return parse_choice(ImageState, value, "state", "state")


def clean_folder_path(path: str) -> str:
    """A relative folder path with forward slashes; refuses anything that climbs out ('..')."""
    path = (path or "").replace("\\", "/").strip().strip("/")
    if not path:
        return ""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise Invalid(f"Folder path {path!r} may not contain '..'", details={"field": "folder"})
    path = "/".join(parts)
    if len(path) > 1024:
        raise Invalid("Folder path is longer than 1024 characters", details={"field": "folder"})
    return path


# ---- uploads -------------------------------------------------------------------------------


@dataclass
class FileOutcome:
    name: str
    stored: bool
    reason: str = ""
    item_id: int | None = None
    size: int = 0


def begin_upload(dataset: Dataset, user: User, split: str | None = None) -> Upload:
    """Open an upload batch that files are added to before its import job runs."""
    refuse_while_deleting(dataset)
    upload = Upload(dataset_id=dataset.id, user_id=user.id, split=parse_split(split or "unassigned").value)
    db.session.add(upload)
    db.session.commit()
    return upload


def get_upload(dataset: Dataset, upload_id: int, user: User) -> Upload:
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.dataset_id != dataset.id or (upload.user_id != user.id and not user.is_admin):
        raise NotFound(f"Upload {upload_id} not found")
    if upload.job_id is not None:
        raise Conflict("This upload was already finished; start a new one")
    refuse_while_deleting(dataset)
    return upload


def _id_of(upload: Upload) -> int:
    """The batch's id without reloading its row (expired by the previous file's commit): a row its
    dataset's deletion removed meanwhile then ends in _commit_item's conflict, not ObjectDeletedError."""
    return sa_inspect(upload).identity[0]


def _commit_item(key: str | None = None) -> None:
    """Commit a ledger row: its upload goes with its dataset, whose deletion may commit first."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if key:
            release_if_unused(key)
        raise Conflict("The dataset was deleted while the files were being sent") from None


def _split_path(raw_name: str, folder: str) -> tuple[str, str]:
    """File name and folder path from a browser's relative path (folder drops) plus a folder field."""
    # Control characters and bidi overrides never reach a stored name (a header or a page shows it).
    raw = clean_file_name(raw_name or "").replace("\\", "/")
    directory, name = posixpath.split(raw)
    return name.strip(), clean_folder_path("/".join(p for p in (folder, directory) if p))


def add_file(upload: Upload, raw_name: str, stream: BinaryIO, folder: str = "") -> FileOutcome:
    """Store one file's bytes and record it in the ledger; a bad file is recorded as failed."""
    config = current_app.config
    name = raw_name or ""
    try:
        name, folder_path = _split_path(raw_name, folder)
    except Invalid as exc:
        return _failed(upload, name, exc.message)
    if not name:
        return _failed(upload, raw_name or "(no name)", "the file has no name")
    if len(name) > MAX_NAME:
        return _failed(upload, name[:MAX_NAME], f"the file name is longer than {MAX_NAME} characters")
    try:
        stored = get_storage().put_stream(stream, max_bytes=config["LOUPE_MAX_IMAGE_BYTES"])
    except TooLarge as exc:
        return _failed(upload, name, f"the file is {exc}")
    # A header check now gives an uploader an immediate answer for non-images and pixel bombs;
    # the import job decodes fully and catches what only a decode finds (truncated data).
    try:
        if stored.size == 0:
            raise imaging.ImageRejected("the file is empty")
        with get_storage().open(stored.key) as fh:
            imaging.inspect(fh, config["LOUPE_MAX_IMAGE_PIXELS"])
    except imaging.ImageRejected as exc:
        release_if_unused(stored.key)
        return _failed(upload, name, str(exc))
    item = ImportItem(upload_id=_id_of(upload), file_name=name, folder_path=folder_path, storage_key=stored.key, byte_size=stored.size)
    db.session.add(item)
    _commit_item(stored.key)
    return FileOutcome(name, True, item_id=item.id, size=stored.size)


def store_files(upload: Upload, files, paths: list[str], folder: str = "") -> list[FileOutcome]:
    """Store each sent file (werkzeug `FileStorage`s) into the upload batch.

    A browser folder drop sends each file's relative path in `paths`, position by position; a
    missing or empty path falls back to the file's own name.
    """
    return [
        add_file(upload, paths[i] if i < len(paths) and paths[i] else (f.filename or ""), f.stream, folder)
        for i, f in enumerate(files)
    ]


def _failed(upload: Upload, name: str, reason: str) -> FileOutcome:
    item = ImportItem(upload_id=_id_of(upload), file_name=name[:MAX_NAME], status=ImportItemStatus.failed, reason=reason)
    db.session.add(item)
    _commit_item()
    return FileOutcome(name, False, reason, item_id=item.id)


def finish_upload(upload: Upload, user: User) -> Job:
    """Close the batch and start its import job."""
    total = db.session.scalar(select(func.count()).where(ImportItem.upload_id == upload.id))
    if not total:
        raise Invalid("No files were sent in this upload", details={"field": "files"})
    dataset = db.session.get(Dataset, upload.dataset_id)
    job = start_job(IMPORT, upload.id, dataset=dataset, user=user, total=total)
    upload.job_id = job.id
    db.session.commit()
    return job


def discard_upload(upload: Upload) -> None:
    """Drop a batch that will never be imported (nothing in it could be stored) and its ledger."""
    db.session.execute(delete(ImportItem).where(ImportItem.upload_id == upload.id))
    db.session.delete(upload)
    db.session.commit()


def upload_outcomes(upload_id: int, failed_only: bool = False, limit: int = 1000) -> list[ImportItem]:
    query = select(ImportItem).where(ImportItem.upload_id == upload_id)
    if failed_only:
        query = query.where(ImportItem.status.in_([ImportItemStatus.failed, ImportItemStatus.duplicate]))
    return db.session.scalars(query.order_by(ImportItem.id).limit(limit)).all()


# ---- the grid ------------------------------------------------------------------------------


@dataclass
class ImageFilter:
    split: str = ""
    state: str = ""
    folder: str = ""
    search: str = ""
    tag: str = ""
    assignee: str = ""  # a user id: the images of theirs in a task; "none": in a task, held by nobody
    task_id: str = ""  # the images of one labeling task
    after: int = 0
    limit: int = PAGE

    def validate(self) -> "ImageFilter":
        if self.split:
            parse_split(self.split)
        if self.state:
            parse_state(self.state)
        for name in ("assignee", "task_id"):
            value = getattr(self, name)
            if value and not (value.isdigit() and len(value) <= 10) and not (name == "assignee" and value == "none"):
                what = "a user id, or none" if name == "assignee" else "a task id"
                raise Invalid(f"{name} must be {what}", details={"field": name})
        if not 1 <= self.limit <= PAGE:
            raise Invalid(f"limit must be between 1 and {PAGE}", details={"field": "limit"})
        if self.after < 0:
            raise Invalid("cursor must be a non-negative image id", details={"field": "cursor"})
        return self

    @classmethod
    def from_args(cls, args) -> "ImageFilter":
        """Parse and validate filters from query arguments (any mapping of strings: the grid, the API, labeling)."""
        try:
            after = parse_int(str(args.get("cursor") or 0))
            limit = parse_int(str(args.get("limit") or PAGE))
        except ValueError:
            raise Invalid("cursor and limit must be whole numbers") from None
        return cls(
            split=args.get("split", ""), state=args.get("state", ""), folder=args.get("folder", ""),
            search=args.get("search", "").strip(), tag=args.get("tag", ""),
            assignee=str(args.get("assignee", "")).strip(), task_id=str(args.get("task_id", "")).strip(), after=after, limit=limit,
        ).validate()

    def args(self) -> dict:
        """The filters as query arguments (empty ones left out), for links to more of the same."""
        values = {
            "split": self.split, "state": self.state, "folder": self.folder, "search": self.search, "tag": self.tag,
            "assignee": self.assignee, "task_id": self.task_id,
        }
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.args())


def filtered_query(dataset: Dataset, user: User, f: ImageFilter):
    """A `select(Image)` of the dataset's images the user may see that match the filter.

    Unordered and unpaged, so each caller adds its own keyset (`Image.id > cursor`), order, limit
    or column list: the grid, its counts and the labeling page's next/previous must agree on
    which images a filter means.
    """
    query = visible_images(select(Image), user, dataset)
    if f.split:
        query = query.where(Image.split == parse_split(f.split))
    if f.state:
        query = query.where(Image.state == parse_state(f.state))
    if f.folder:
        folder_id = db.session.scalar(select(Folder.id).where(Folder.dataset_id == dataset.id, Folder.path == clean_folder_path(f.folder)))
        query = query.where(Image.folder_id == folder_id) if folder_id else query.where(False)
    if f.search:
        pattern = "%" + f.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Image.file_name.ilike(pattern, escape="\\"))
    if f.tag:
        query = query.where(exists().where(ImageTag.image_id == Image.id, ImageTag.tag_id == Tag.id, Tag.name == f.tag, Tag.dataset_id == dataset.id))
    if f.assignee or f.task_id:
        turn = [Assignment.image_id == Image.id]
        if f.assignee:
            turn.append(Assignment.labeler_id.is_(None) if f.assignee == "none" else Assignment.labeler_id == int(f.assignee))
        if f.task_id:
            turn.append(Assignment.task_id == int(f.task_id))
        query = query.where(exists().where(*turn))
    return query


def grid_page(dataset: Dataset, user: User, f: ImageFilter) -> tuple[list[Image], int | None]:
    """One keyset page of images (id order) and the cursor of the next page, if any."""
    f.validate()
    # PostgreSQL likes to walk the primary key for "ORDER BY id LIMIT n" and filter by dataset, which
    # reads past every older dataset's rows first; starting the first page at the dataset's first
    # image keeps that walk inside the dataset.
    after = f.after or _first_image_id(dataset) - 1
    query = filtered_query(dataset, user, f).where(Image.id > after).order_by(Image.id).limit(f.limit + 1)
    images = db.session.scalars(query).all()
    next_cursor = images[f.limit - 1].id if len(images) > f.limit else None
    return list(images[: f.limit]), next_cursor


def _first_image_id(dataset: Dataset) -> int:
    """The dataset's smallest image id (1 when it has none), found through its (dataset_id, id) index.

    Written as a row comparison so the planner cannot turn it into a primary-key walk, as it
    does with `min(id) ... WHERE dataset_id = ?`.
    """
    first = db.session.scalar(
        select(Image.id)
        .where(tuple_(Image.dataset_id, Image.id) > tuple_(dataset.id, 0), Image.dataset_id <= dataset.id)
        .order_by(Image.dataset_id, Image.id)
        .limit(1)
    )
    return first or 1


def kept_count(dataset: Dataset, user: User, f: ImageFilter) -> int | None:
    """How many images match, when the dataset's counter says (unfiltered, and the user sees every
    image); None when they must be counted."""
    return dataset.image_count if not f.active and sees_all_images(user, dataset) else None


def count_images(dataset: Dataset, user: User, f: ImageFilter, cap: int | None = None) -> int:
    """How many images match; unfiltered counts come from the dataset's counter."""
    kept = kept_count(dataset, user, f)
    if kept is not None:
        return kept
    inner = filtered_query(dataset, user, f).with_only_columns(Image.id)
    if cap:
        inner = inner.limit(cap)
    return db.session.scalar(select(func.count()).select_from(inner.subquery()))


def folders_of(dataset: Dataset, user: User) -> list[str]:
    """The folder paths the user may see: all, or (a labeler) those holding an image assigned to them."""
    query = select(Folder.path).where(Folder.dataset_id == dataset.id)
    if not sees_all_images(user, dataset):
        query = query.where(Folder.id.in_(visible_images(select(Image.folder_id), user, dataset)))
    return db.session.scalars(query.order_by(Folder.path)).all()


def get_by_external_id(dataset: Dataset, user: User, external_id: str) -> Image:
    image = db.session.scalar(visible_images(select(Image), user, dataset).where(Image.external_id == external_id))
    if image is None:
        raise NotFound(f"No image with external_id {external_id!r} in dataset {dataset.id}")
    return image


# ---- changes -------------------------------------------------------------------------------


def _ids(dataset: Dataset, image_ids) -> list[int]:
    if not is_id_list(image_ids, INT64_MAX):
        raise Invalid("image_ids must be a list of integer ids", details={"field": "image_ids"})
    if len(image_ids) > MAX_BULK:
        raise Invalid(f"At most {MAX_BULK} images at once", details={"field": "image_ids"})
    found = db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.id.in_(image_ids))).all()
    missing = sorted(set(image_ids) - set(found))
    if missing:
        raise NotFound(f"Images not in this dataset: {', '.join(map(str, missing[:20]))}", details={"image_ids": missing[:100]})
    return list(found)


def ids_by_names(dataset: Dataset, names) -> list[int]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Invalid("names must be a list of file names", details={"field": "names"})
    if len(names) > MAX_BULK:
        raise Invalid(f"At most {MAX_BULK} images at once", details={"field": "names"})
    return list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.file_name.in_(names))))


def set_split(dataset: Dataset, image_ids, split: str) -> int:
    """Set the split of many images of one dataset."""
    ids = _ids(dataset, image_ids)
    db.session.execute(update(Image).where(Image.dataset_id == dataset.id, Image.id.in_(ids)).values(split=parse_split(split)))
    db.session.commit()
    return len(ids)


def delete_images(dataset: Dataset, image_ids) -> int:
    """Delete images (their annotations, revisions and tag links go with them by ON DELETE CASCADE),
    take them out of every counter, and remove stored files no other image still references."""
    ids = _ids(dataset, image_ids)
    # Lock the rows first, in id order as saves do: a save or a tag change on one of these images
    # waits, then finds it gone, so nothing is counted that the cascade then takes away unseen.
    rows = db.session.execute(
        select(Image.storage_key, Image.byte_size, Image.state).where(Image.id.in_(ids)).order_by(Image.id).with_for_update()
    ).all()
    per_label = db.session.execute(
        select(Annotation.label_id, func.count(), func.count(func.distinct(Annotation.image_id)))
        .where(Annotation.image_id.in_(ids)).group_by(Annotation.label_id)
    ).all()
    lost_tags = Counter(db.session.scalars(
        delete(ImageTag).where(ImageTag.image_id.in_(ids)).returning(ImageTag.tag_id).execution_options(synchronize_session=False)
    ))
    db.session.execute(delete(Image).where(Image.id.in_(ids)).execution_options(synchronize_session=False))
    # The dataset's row, then labels and tags in id order: the order saves lock them in.
    db.session.execute(update(Dataset).where(Dataset.id == dataset.id).values(
        image_count=Dataset.image_count - len(rows),
        total_bytes=Dataset.total_bytes - sum(row.byte_size for row in rows),
        annotated_count=Dataset.annotated_count - sum(row.state != ImageState.unlabeled for row in rows),
        annotation_count=Dataset.annotation_count - sum(annotations for _, annotations, _ in per_label),
    ))
    for label_id, annotations, images in sorted(per_label):
        db.session.execute(update(Label).where(Label.id == label_id).values(
            annotation_count=Label.annotation_count - annotations, image_count=Label.image_count - images
        ))
    _count_tags({tag_id: -count for tag_id, count in lost_tags.items()})
    db.session.commit()
    for key in {row.storage_key for row in rows}:
        release_if_unused(key)
    return len(rows)


def release_if_unused(key: str) -> None:
    """Remove a stored object, its thumbnail and the canvas's cached preview and regions when unused."""
    from models import VersionImage  # a released version keeps its files whatever the live dataset does

    in_use = db.session.scalar(select(exists().where(Image.storage_key == key))) or db.session.scalar(
        select(exists().where(ImportItem.storage_key == key, ImportItem.status == ImportItemStatus.pending))
    ) or db.session.scalar(select(exists().where(VersionImage.storage_key == key)))
    if not in_use:
        storage = get_storage()
        storage.delete(key)
        storage.delete(thumbnail_key_for(key))
        from services.regions import preview_key_for, regions_prefix_for

        storage.delete(preview_key_for(key))
        storage.delete_prefix(regions_prefix_for(key))


def ensure_thumbnail(image: Image) -> str:
    """The image's thumbnail key; a missing thumbnail (storage restored without its derived files)
    is made again from the original, as the import job makes it."""
    storage = get_storage()
    key = image.thumbnail_key
    if not storage.exists(key):
        config = current_app.config
        try:
            with storage.open(image.storage_key) as fh:
                processed = imaging.process(fh.read(), config["LOUPE_MAX_IMAGE_PIXELS"], config["LOUPE_THUMBNAIL_SIZE"])
        except FileNotFoundError:
            raise NotFound("The file is missing from storage") from None
        except imaging.ImageRejected as exc:
            raise Invalid(f"The stored image cannot be decoded: {exc}") from None
        storage.put_bytes(key, processed.thumbnail)
    return key


def update_image(image: Image, **changes) -> Image:
    """Change an image's split, folder or tags."""
    unknown = set(changes) - {"split", "folder", "tags"}
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))}; use split, folder or tags")
    names = _clean_tag_list(changes["tags"]) if "tags" in changes else None
    # The image's row first, as saves and deletes lock it, so the three never wait on each other in a circle.
    db.session.execute(select(Image.id).where(Image.id == image.id).with_for_update(key_share=True))
    if "split" in changes:
        image.split = parse_split(changes["split"])
    if "folder" in changes:
        path = clean_folder_path(changes["folder"] or "")
        image.folder_id = folder_for(image.dataset_id, path) if path else None
    if names is not None:
        _set_tags(image, names)
    db.session.commit()
    return image


def _clean_tag_list(tags) -> list[str]:
    """Distinct tag names, stripped, in the order given, from a list of at most MAX_TAGS_PER_IMAGE."""
    if not isinstance(tags, list) or not all(map(_tag_name_ok, tags)):
        raise Invalid(f"tags must be a list of names of 1 to {MAX_TAG_NAME} characters", details={"field": "tags"})
    if len(tags) > MAX_TAGS_PER_IMAGE:
        raise Invalid(f"An image carries at most {MAX_TAGS_PER_IMAGE} tags, got {len(tags)}", details={"field": "tags"})
    return list(dict.fromkeys(t.strip() for t in tags))


def _set_tags(image: Image, names: list[str]) -> None:
    """Make `names` the image's tags in a few set-based statements, whatever their number.

    The counters move by the links really inserted and deleted, so two people setting the same
    tags at once count each link once.
    """
    wanted = set(tag_ids_for(image.dataset_id, names).values())
    current = set(db.session.scalars(select(ImageTag.tag_id).where(ImageTag.image_id == image.id)))
    gone = sorted(current - wanted)
    removed = db.session.scalars(
        delete(ImageTag).where(ImageTag.image_id == image.id, ImageTag.tag_id.in_(gone))
        .returning(ImageTag.tag_id).execution_options(synchronize_session=False)
    ).all() if gone else []
    added = insert_missing(
        ImageTag, [{"image_id": image.id, "tag_id": t} for t in sorted(wanted - current)], ("image_id", "tag_id"), ImageTag.tag_id
    )
    _count_tags({**{t: -1 for t in removed}, **{t: 1 for t in added}})


def insert_missing(model, rows, unique: tuple[str, ...], returning=None):
    """INSERT rows (dicts, or a Select whose labelled columns name them), skipping those whose
    `unique` columns are taken: ON CONFLICT DO NOTHING. Returns the rows really inserted: their
    `returning` column, or without one, how many.

    The one way tags, folders and tag links are created. A read-then-insert lets two requests
    both see "missing" and the slower one fail on the unique constraint (twenty people adding the
    same new tag got 500s); here PostgreSQL makes the second wait for the first to commit and
    then skip, and SQLite's single writer never sees the conflict at all.
    """
    if not isinstance(rows, Select) and not rows:
        return 0 if returning is None else []
    insert = {"postgresql": postgresql, "sqlite": sqlite}[db.session.get_bind().dialect.name].insert(model)
    insert = insert.from_select([c.name for c in rows.selected_columns], rows) if isinstance(rows, Select) else insert.values(rows)
    statement = insert.on_conflict_do_nothing(index_elements=list(unique))
    if returning is None:
        # SQLAlchemy keeps an INSERT's rowcount only when asked (UPDATE and DELETE always).
        return db.session.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    return db.session.scalars(statement.returning(returning)).all()


def tag_ids_for(dataset_id: int, names: list[str]) -> dict[str, int]:
    """Each tag name's id in the dataset, creating the tags that do not exist yet."""
    if not names:
        return {}
    names = sorted(set(names))  # one insert order for everyone, so concurrent creators lock alike
    insert_missing(Tag, [{"dataset_id": dataset_id, "name": n, "image_count": 0} for n in names], ("dataset_id", "name"))
    return dict(db.session.execute(select(Tag.name, Tag.id).where(Tag.dataset_id == dataset_id, Tag.name.in_(names))).all())


def folder_for(dataset_id: int, path: str) -> int:
    """The id of a folder path, creating it and its parents as needed."""
    folder_id = db.session.scalar(select(Folder.id).where(Folder.dataset_id == dataset_id, Folder.path == path))
    if folder_id is not None:
        return folder_id
    parent_id = None
    prefix = []
    for part in path.split("/"):
        prefix.append(part)
        current = "/".join(prefix)
        insert_missing(Folder, [{"dataset_id": dataset_id, "path": current, "parent_id": parent_id}], ("dataset_id", "path"))
        parent_id = db.session.scalar(select(Folder.id).where(Folder.dataset_id == dataset_id, Folder.path == current))
    return parent_id


# ---- tags ----------------------------------------------------------------------------------


def list_tags(dataset: Dataset, user: User) -> list[dict]:
    """The tags by name, each with how many images carry it, as far as the user sees images.

    The kept counters for whoever sees every image; for a labeler, only the tags of their assigned
    images, counted over those, so no name or number tells of an image they may not see.
    """
    if sees_all_images(user, dataset):
        rows = db.session.execute(select(Tag.name, Tag.image_count).where(Tag.dataset_id == dataset.id).order_by(Tag.name))
    else:
        shown = visible_images(select(Image.id), user, dataset)
        rows = db.session.execute(
            select(Tag.name, func.count()).join(ImageTag, ImageTag.tag_id == Tag.id)
            .where(Tag.dataset_id == dataset.id, ImageTag.image_id.in_(shown)).group_by(Tag.id, Tag.name).order_by(Tag.name)
        )
    return [{"name": name, "image_count": count} for name, count in rows]


def _count_tags(deltas: dict[int, int]) -> None:
    """Move tags' kept image counts by a delta each: one UPDATE per distinct delta, whatever the number of tags.

    The rows are locked first in id order, so concurrent changes of overlapping tags lock alike.
    """
    by_delta: dict[int, list[int]] = {}
    for tag_id, delta in deltas.items():
        if delta:
            by_delta.setdefault(delta, []).append(tag_id)
    if not by_delta:
        return
    # FOR NO KEY UPDATE, as an UPDATE of the count takes: FOR UPDATE would also wait for the key-share
    # locks that inserting links to these tags takes, and two such inserters would deadlock.
    db.session.execute(
        select(Tag.id).where(Tag.id.in_(sorted(t for ids in by_delta.values() for t in ids))).order_by(Tag.id).with_for_update(key_share=True)
    )
    for delta, tag_ids in sorted(by_delta.items()):
        db.session.execute(update(Tag).where(Tag.id.in_(tag_ids)).values(image_count=Tag.image_count + delta))


def recount_tags(dataset_id: int) -> None:
    """Recompute every tag's image count of the dataset from its links (the refresh-counters job)."""
    links = select(func.count()).select_from(ImageTag).where(ImageTag.tag_id == Tag.id).scalar_subquery()
    db.session.execute(update(Tag).where(Tag.dataset_id == dataset_id).values(image_count=links).execution_options(synchronize_session=False))


def tags_by_image(image_ids: list[int]) -> dict[int, list[str]]:
    """The tag names of each image, in one query for a whole grid page (images without tags left out)."""
    rows = db.session.execute(
        select(ImageTag.image_id, Tag.name).join(Tag, Tag.id == ImageTag.tag_id)
        .where(ImageTag.image_id.in_(image_ids)).order_by(ImageTag.image_id, Tag.name)
    )
    names: dict[int, list[str]] = {}
    for image_id, name in rows:
        names.setdefault(image_id, []).append(name)
    return names


def _tag_named(dataset: Dataset, name: str) -> Tag:
    tag = db.session.scalar(select(Tag).where(Tag.dataset_id == dataset.id, Tag.name == name))
    if tag is None:
        raise NotFound(f"No tag {name!r} in dataset {dataset.id}")
    return tag


def rename_tag(dataset: Dataset, name: str, new_name) -> dict:
    """Rename a tag; renaming onto an existing tag merges the two (then "merged" is true)."""
    new_name = _clean_tag_name(new_name, field="name", subject="The new tag name")
    try:
        return _rename_tag(dataset, name, new_name)
    except IntegrityError:
        # Another request gave a tag this name at the same moment. Nothing of this one was kept,
        # and run again it finds that tag and merges into it, which cannot conflict.
        db.session.rollback()
        return _rename_tag(dataset, name, new_name)


def _rename_tag(dataset: Dataset, name: str, new_name: str) -> dict:
    tag = _tag_named(dataset, name)
    target = db.session.scalar(select(Tag).where(Tag.dataset_id == dataset.id, Tag.name == new_name))
    if target is None:
        tag.name = new_name
        db.session.flush()
    elif target.id != tag.id:
        # Merge: the target gains a link for each image with the tag (images carrying both keep
        # one), then the tag goes with its links.
        links = select(ImageTag.image_id, literal(target.id).label("tag_id")).where(ImageTag.tag_id == tag.id)
        moved = insert_missing(ImageTag, links, ("image_id", "tag_id"))
        _count_tags({target.id: moved})
        db.session.execute(delete(ImageTag).where(ImageTag.tag_id == tag.id))
        db.session.execute(delete(Tag).where(Tag.id == tag.id))
    db.session.commit()
    kept = target if target is not None else tag
    db.session.refresh(kept)
    return {"name": new_name, "image_count": kept.image_count, "merged": target is not None and target.id != tag.id}


def delete_tag(dataset: Dataset, name: str) -> int:
    """Remove a tag from every image of the dataset; how many images lost it."""
    tag = _tag_named(dataset, name)
    count = db.session.execute(delete(ImageTag).where(ImageTag.tag_id == tag.id)).rowcount
    db.session.execute(delete(Tag).where(Tag.id == tag.id))
    db.session.commit()
    return count


# ---- bulk tags and folders (the grid's bar) -------------------------------------------------


def _tag_name_ok(name) -> bool:
    return isinstance(name, str) and 0 < len(name.strip()) <= MAX_TAG_NAME


def _clean_tag_name(name, field: str = "tag", subject: str = "A tag name") -> str:
    if not _tag_name_ok(name):
        raise Invalid(f"{subject} must have 1 to {MAX_TAG_NAME} characters", details={"field": field})
    return name.strip()


def add_tag_to_images(dataset: Dataset, image_ids, name) -> int:
    """Tag many images of one dataset; how many images gained the tag."""
    name = _clean_tag_name(name)
    ids = _ids(dataset, image_ids)
    tag_id = tag_ids_for(dataset.id, [name])[name]
    have = set(db.session.scalars(select(ImageTag.image_id).where(ImageTag.tag_id == tag_id, ImageTag.image_id.in_(ids))))
    # Counted by the links really inserted: a concurrent request tagging the same images adds the rest.
    added = insert_missing(
        ImageTag, [{"image_id": i, "tag_id": tag_id} for i in sorted(ids) if i not in have], ("image_id", "tag_id"), ImageTag.image_id
    )
    _count_tags({tag_id: len(added)})
    db.session.commit()
    return len(added)


def remove_tag_from_images(dataset: Dataset, image_ids, name) -> int:
    """Take a tag off many images of one dataset (the tag itself stays); how many lost it."""
    name = _clean_tag_name(name)
    ids = _ids(dataset, image_ids)
    tag = _tag_named(dataset, name)
    removed = db.session.execute(delete(ImageTag).where(ImageTag.tag_id == tag.id, ImageTag.image_id.in_(ids))).rowcount
    _count_tags({tag.id: -removed})
    db.session.commit()
    return removed


def move_to_folder(dataset: Dataset, image_ids, path) -> int:
    """Move many images of one dataset into a folder (created as needed; "" is the top level)."""
    if not isinstance(path, str):
        raise Invalid("folder must be a folder path", details={"field": "folder"})
    ids = _ids(dataset, image_ids)
    path = clean_folder_path(path)
    folder_id = folder_for(dataset.id, path) if path else None
    db.session.execute(update(Image).where(Image.dataset_id == dataset.id, Image.id.in_(ids)).values(folder_id=folder_id))
    db.session.commit()
    return len(ids)


# What each bulk action of the grid's bar takes besides the images, and the service that applies it.
BULK_CHANGES = {
    "set_split": (("split",), lambda dataset, ids, p: set_split(dataset, ids, p["split"])),
    "add_tag": (("tag",), lambda dataset, ids, p: add_tag_to_images(dataset, ids, p["tag"])),
    "remove_tag": (("tag",), lambda dataset, ids, p: remove_tag_from_images(dataset, ids, p["tag"])),
    "move_folder": (("to_folder",), lambda dataset, ids, p: move_to_folder(dataset, ids, p["to_folder"])),
    "delete": ((), lambda dataset, ids, p: delete_images(dataset, ids)),
}


def check_bulk_change(dataset: Dataset, action: str, params: dict) -> None:
    """Refuse a bulk action's bad parameters before any image changes (and before a job starts)."""
    if action not in BULK_CHANGES:
        raise Invalid(f"Unknown bulk action {action!r}", details={"field": "action"})
    if action == "set_split":
        parse_split(params["split"])
    elif action in ("add_tag", "remove_tag"):
        name = _clean_tag_name(params["tag"])
        if action == "remove_tag":
            _tag_named(dataset, name)
    elif action == "move_folder":
        clean_folder_path(params["to_folder"])


def apply_bulk_change(dataset: Dataset, action: str, image_ids, params: dict) -> int:
    """Apply one bulk action to at most MAX_BULK images; how many images it changed."""
    check_bulk_change(dataset, action, params)
    return BULK_CHANGES[action][1](dataset, image_ids, params)


def shown_images(dataset: Dataset, user: User, image_ids) -> list[Image]:
    """The images among these ids that still exist and the user may see, in id order (tiles to redraw)."""
    if not is_id_list(image_ids, INT64_MAX) or len(image_ids) > MAX_BULK:
        raise Invalid(f"image_ids must be a list of at most {MAX_BULK} image ids", details={"field": "image_ids"})
    return list(db.session.scalars(visible_images(select(Image), user, dataset).where(Image.id.in_(image_ids)).order_by(Image.id)))
