"""The Versions page without a browser: the release form, the polled list, the comparison."""

from core.extensions import db
from models import Version
from services.annotations import replace_annotations
from services.images import update_image
from tests.support import member, sign_in
from tests.versions.conftest import box

HX = {"HX-Request": "true"}


def test_a_release_from_the_page_is_polled_until_listed(client, run_jobs, shop):
    replace_annotations(shop.images[0], shop.owner, [box(shop.cat), box(shop.dog)])
    sign_in(client, shop.owner)
    page = client.get(f"/datasets/{shop.dataset.id}/versions/").get_data(as_text=True)
    assert 'id="release-form"' in page and "No version released yet." in page and ">Versions</a>" in page
    answer = client.post(f"/datasets/{shop.dataset.id}/versions/", data={"note": "for training"}, headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'hx-trigger="every 1s"' in body and "Releasing V001" in body
    assert 'id="release-note" maxlength="2000" placeholder="What this version is for" size="50" hx-swap-oob="true"' in body
    run_jobs()
    polled = client.get(f"/datasets/{shop.dataset.id}/versions/", headers=HX).get_data(as_text=True)
    assert 'hx-trigger' not in polled and 'data-version="V001"' in polled and "for training" in polled
    assert '<td class="version-images">4</td>' in polled and '<td class="version-annotations">2</td>' in polled
    assert "2 labels" in polled and ">cat</span>" in polled


def test_the_page_compares_two_versions(client, run_jobs, shop):
    sign_in(client, shop.owner)
    client.post(f"/datasets/{shop.dataset.id}/versions/", data={})
    run_jobs()
    update_image(shop.images[1], split="test")
    client.post(f"/datasets/{shop.dataset.id}/versions/", data={})
    run_jobs()
    first, second = db.session.scalars(db.select(Version.id).where(Version.dataset_id == shop.dataset.id).order_by(Version.number)).all()
    page = client.get(f"/datasets/{shop.dataset.id}/versions/").get_data(as_text=True)
    assert 'id="compare-form"' in page
    partial = client.get(f"/datasets/{shop.dataset.id}/versions/compare?a={first}&b={second}", headers=HX).get_data(as_text=True)
    assert "0 added</span>" in partial and "1 changed" in partial and "unassigned → test" in partial
    full = client.get(f"/datasets/{shop.dataset.id}/versions/compare?a={first}&b={second}")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert client.get(f"/datasets/{shop.dataset.id}/versions/compare?a={first}&b=x").status_code == 422
    assert client.get(f"/datasets/{shop.dataset.id}/versions/compare?a={first}&b=2147483647").status_code == 404


def test_reviewers_see_no_versions_tab_and_may_not_release(client, shop):
    reviewer = member(shop.dataset, "reviewer")
    sign_in(client, reviewer)
    assert ">Versions</a>" not in client.get(f"/datasets/{shop.dataset.id}/images/").get_data(as_text=True)
    assert client.post(f"/datasets/{shop.dataset.id}/versions/", data={}).status_code == 403
    assert not db.session.scalar(db.select(db.func.count()).select_from(Version))
