"""Every kind of job, declared once: its body, its queue, the dataset status it implies, and how a
second start is answered. Starting a job is `start_job(EXPORT, ...)` (services.jobs); no caller
spells a dotted path, a queue name or a status string."""

from dataclasses import dataclass
from typing import Literal

from core.queues import QUEUES

# A dataset's status (SPEC): ready unless an active job of a kind with a status says otherwise.
READY, IMPORTING, EXPORTING, DELETING = "ready", "importing", "exporting", "deleting"
# When a dataset has active jobs of several such kinds, the first status here wins.
DATASET_STATUSES = (DELETING, EXPORTING, IMPORTING)

# How a second start of a kind is answered while one is queued or running (and its process alive):
# "allow" starts another; "same_args" answers the active job started with the same arguments;
# "one_per_dataset" answers the dataset's active job of the kind (for a kind started without a
# dataset: any active job of the kind, so it runs one at a time).
Duplicates = Literal["allow", "same_args", "one_per_dataset"]
ALLOW, SAME_ARGS, ONE_PER_DATASET = "allow", "same_args", "one_per_dataset"


@dataclass(frozen=True)
class JobKind:
    key: str  # stored in Job.kind
    func: str  # dotted path of the job body (workers/...)
    queue: str  # one of core.queues.QUEUES
    dataset_status: str | None  # what a queued or running job of this kind makes its dataset's status
    duplicates: Duplicates

    def __post_init__(self):
        if self.queue not in QUEUES:
            raise ValueError(f"job kind {self.key}: unknown queue {self.queue!r}")
        if self.dataset_status not in (None, *DATASET_STATUSES):
            raise ValueError(f"job kind {self.key}: unknown dataset status {self.dataset_status!r}")
        if self.duplicates not in (ALLOW, SAME_ARGS, ONE_PER_DATASET):
            raise ValueError(f"job kind {self.key}: unknown duplicates rule {self.duplicates!r}")


IMPORT = JobKind("import", "workers.imports.import_upload", "imports", IMPORTING, ALLOW)
# One at a time per dataset: two imports of annotations would replace the same images' in turn.
IMPORT_ANNOTATIONS = JobKind("import_annotations", "workers.annotation_imports.import_annotations", "imports", IMPORTING, ONE_PER_DATASET)
DELETE_DATASET = JobKind("delete_dataset", "workers.datasets.delete_dataset", "datasets", DELETING, ONE_PER_DATASET)
REFRESH_COUNTERS = JobKind("refresh_counters", "workers.datasets.refresh_counters", "datasets", None, ALLOW)
REFRESH_LABEL_COUNTERS = JobKind("refresh_label_counters", "workers.labels.refresh_label_counters", "datasets", None, ALLOW)
DELETE_LABEL = JobKind("delete_label", "workers.labels.delete_label", "datasets", None, SAME_ARGS)
MERGE_LABELS = JobKind("merge_labels", "workers.labels.merge_labels", "datasets", None, SAME_ARGS)
BULK_EDIT = JobKind("bulk_edit", "workers.bulk.edit_matching", "datasets", None, ALLOW)
EXPORT = JobKind("export", "workers.exports.run_export", "exports", EXPORTING, ALLOW)
CLEANUP_EXPORTS = JobKind("cleanup_exports", "workers.exports.cleanup_expired", "exports", None, ONE_PER_DATASET)
# Two people releasing at once get two versions (V001 and V002), each numbered before its job starts.
RELEASE_VERSION = JobKind("release_version", "workers.versions.release_version", "datasets", None, ALLOW)
AUTO_SPLIT = JobKind("auto_split", "workers.splits.auto_split", "datasets", None, SAME_ARGS)
BUILD_TASK = JobKind("build_task", "workers.tasks.build_task", "datasets", None, SAME_ARGS)
# A failed acceptance sample's lot back to review; asked again while it runs, the same job.
SEND_BACK_LOT = JobKind("send_back_lot", "workers.sampling.send_back_lot", "datasets", None, SAME_ARGS)

KINDS = {kind.key: kind for kind in (
    IMPORT, IMPORT_ANNOTATIONS, DELETE_DATASET, REFRESH_COUNTERS, REFRESH_LABEL_COUNTERS, DELETE_LABEL, MERGE_LABELS, BULK_EDIT,
    EXPORT, CLEANUP_EXPORTS, RELEASE_VERSION, AUTO_SPLIT, BUILD_TASK, SEND_BACK_LOT,
)}
