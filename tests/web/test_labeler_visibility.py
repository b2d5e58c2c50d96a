"""A labeler learns nothing through the pages about the images not assigned to them.

The grid's tag and folder filters, the dataset page's counts and jobs, the dataset list's
counters and the labels page's counters all stay within their assignment; every other role sees
the whole dataset.
"""

import re

import pytest

from models import Label
from tests.api.test_labeler_visibility import ASSIGNED, LABEL_NAMES, ROLES, WHOLE, Scene, build_scene
from tests.support import sign_in


@pytest.fixture(params=ROLES)
def scene(request, client) -> Scene:
    scene = build_scene(request.param)
    sign_in(client, scene.user)
    return scene


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    return re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', select.group(0)) if select else []


def test_the_grid_filters_offer_only_the_tags_and_folders_of_images_the_role_sees(client, scene):
    page = client.get(f"/datasets/{scene.dataset.id}/images/").get_data(as_text=True)
    if scene.sees_all:
        assert options(page, "tag") == [("mine", "mine (1)"), ("shared", "shared (3)"), ("unseen-tag", "unseen-tag (2)")]
        assert [path for path, _ in options(page, "folder")] == ["seen", "unseen-folder"]
    else:
        assert options(page, "tag") == [("mine", "mine (1)"), ("shared", "shared (2)")]
        assert [path for path, _ in options(page, "folder")] == ["seen"]
        assert "unseen" not in page


def test_the_dataset_page_counts_and_lists_jobs_as_far_as_the_role_sees(client, scene):
    page = client.get(f"/datasets/{scene.dataset.id}").get_data(as_text=True)
    assert f"<strong>{4 if scene.sees_all else 2}</strong> images" in page
    assert (f'data-job-id="{scene.owners_job.id}"' in page) is scene.sees_all
    assert f'data-job-id="{scene.own_job.id}"' in page


def test_the_dataset_list_counts_only_the_images_the_role_sees(client, scene):
    page = client.get("/datasets/").get_data(as_text=True)
    card = page[page.index(f'data-dataset-id="{scene.dataset.id}"'):]
    expected = "4 images · 3.9 KB" if scene.sees_all else "2 images · 2 KB"
    assert expected in " ".join(card[: card.index("</a>")].split()), card[:800]


def test_a_labeler_cannot_open_a_job_someone_else_started(client, scene):
    assert client.get(f"/jobs/{scene.owners_job.id}").status_code == (200 if scene.sees_all else 404)
    assert client.get(f"/jobs/{scene.own_job.id}").status_code == 200


def label_rows(html: str) -> dict:
    """Each label row's (images, annotations) counters, by label name, in page order."""
    rows = re.findall(r'<tr id="label-\d+"[^>]*data-label-name="([^"]+)".*?data-counter="images">(\d+)<.*?data-counter="annotations">(\d+)<', html, re.S)
    return {name: (int(images), int(annotations)) for name, images, annotations in rows}


def test_the_labels_page_counts_only_the_images_the_role_sees(client, scene):
    expected = (WHOLE if scene.sees_all else ASSIGNED)["labels"]
    page = client.get(f"/datasets/{scene.dataset.id}/labels/").get_data(as_text=True)
    assert list(label_rows(page)) == LABEL_NAMES
    assert label_rows(page) == expected
    for label in Label.query.filter_by(dataset_id=scene.dataset.id):
        row = client.get(f"/datasets/{scene.dataset.id}/labels/{label.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert label_rows(row) == {label.name: expected[label.name]}
