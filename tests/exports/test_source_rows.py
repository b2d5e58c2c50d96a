"""The live source's cheap path: rows() holds exactly what images() does, under every filter and
a tag map (formats that write a line per annotation read rows, the others records)."""

import pytest

from formats.base import ROW_FIELDS, rows_of
from services.export_source import ExportFilter, LiveSource
from tests.exports.conftest import make_export_world


def _filters(world):
    labels = world.labels
    return {
        "everything": ExportFilter(),
        "split": ExportFilter(splits=("train",)),
        "state": ExportFilter(states=("accepted",)),
        "labels": ExportFilter(label_ids=(labels["dog"].id,)),
        "labels and split": ExportFilter(splits=("train", "validation"), label_ids=(labels["cat"].id, labels["bird"].id)),
        "selection": ExportFilter(image_ids=(world.images["b.png"].id, world.images["d.png"].id)),
    }


@pytest.mark.parametrize("name", ["everything", "split", "state", "labels", "labels and split", "selection"])
@pytest.mark.parametrize("tagmap", [{}, {"cat": "animal", "dog": "animal"}], ids=["no tag map", "merging tag map"])
def test_rows_are_the_records_flattened(app_ctx, name, tagmap):
    world = make_export_world()
    source = LiveSource(world.dataset, _filters(world)[name], tagmap)
    assert list(source.rows()) == list(rows_of(source.images()))
    assert source.labels  # the tag map's merged labels are what the rows' label ids point at
    assert {row[ROW_FIELDS.index("label_id")] for row in source.rows()} - {None} <= {label.id for label in source.labels}


def test_rows_leave_out_the_fields_not_asked_for_but_never_the_image(app_ctx):
    world = make_export_world()
    source = LiveSource(world.dataset)
    fields = ("image_id", "split", "label_id")
    for row, full in zip(source.rows(fields), source.rows()):
        assert row[0] == full[0]
        for position, name in enumerate(ROW_FIELDS):
            assert row[position] in (None, full[position]) if name not in fields else row[position] == full[position]
