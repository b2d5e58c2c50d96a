"""Every model, imported once so Alembic and the app see the whole schema."""

from models.annotation import Annotation, AnnotationRevision, Review, Verdict
from models.dataset import SHAPES, SHAPES_BY_TYPE, SINGLE_TAG_TYPES, Dataset, DatasetMember, DatasetType, Role
from models.image import Folder, Image, ImageState, ImageTag, Split, Tag
from models.jobs import ImportItem, ImportItemStatus, Job, JobStatus, Upload
from models.label import Label
from models.team import (
    AcceptanceSample, Assignment, AssignmentState, DatasetWorkforce, LabelingTask, SampleItem, SampleOutcome, TaskMember,
    TaskStrategy, Workforce, WorkforceInvite, WorkforceMember, WorkforceRole,
)
from models.user import ApiToken, User
from models.version import Export, Version, VersionImage

__all__ = [
    "SHAPES", "SHAPES_BY_TYPE", "SINGLE_TAG_TYPES",
    "Annotation", "AnnotationRevision", "ApiToken", "Assignment", "Dataset", "DatasetMember",
    "DatasetType", "Export", "Folder", "Image", "ImageState", "ImageTag", "ImportItem", "ImportItemStatus",
    "Job", "JobStatus", "Label", "LabelingTask", "Review", "Role", "Split", "Tag", "Upload",
    "User", "Verdict", "Version", "VersionImage", "Workforce", "WorkforceMember", "WorkforceRole", "AssignmentState",
    "AcceptanceSample", "DatasetWorkforce", "SampleItem", "SampleOutcome", "TaskMember", "TaskStrategy", "WorkforceInvite",
]
