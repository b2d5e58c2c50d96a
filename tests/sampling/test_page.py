"""The sampling pages: the start form (and its bad input), the sample at work as a page and as the
HTMX partial a verdict answers with, and URLs that mix two tasks."""

import pytest

from core.extensions import db
from models import AcceptanceSample, Image, SampleItem
from services import sampling
from tests.factories import make_dataset, make_user
from tests.support import insert_images, sign_in
from tests.team_stats.support import accepted_task

HX = {"HX-Request": "true"}


@pytest.fixture
def owner_page(client, app_ctx):
    owner = make_user(name="Owner")
    dataset = make_dataset(owner, name="Parts")
    ids = insert_images(dataset, 6)
    task = accepted_task(dataset, owner, ids, sampling_rate=0.5)
    sign_in(client, owner)
    return client, owner, dataset, task, f"/datasets/{dataset.id}/tasks/{task.id}/sampling"


def test_the_page_offers_the_form_with_the_tasks_rate_and_the_task_statistics(owner_page):
    client, _, _, _, url = owner_page
    page = client.get(url).get_data(as_text=True)
    assert 'id="sample-form"' in page and 'value="0.5"' in page and 'id="team-table"' in page and "No sample drawn yet." in page


@pytest.mark.parametrize("form, field", [
    ({"rate": "abc"}, "rate"), ({"rate": "0"}, "rate"), ({"rate": "2"}, "rate"), ({"rate": "nan"}, "rate"), ({"rate": "1e999"}, "rate"),
    ({"rate": "-0.5"}, "rate"), ({"required_accuracy": "5"}, "required_accuracy"), ({"required_accuracy": "0"}, "required_accuracy"),
    ({"required_accuracy": "high"}, "required_accuracy"), ({"seed": "x"}, "seed"), ({"seed": "9" * 30}, "seed"),
])
def test_bad_form_input_is_shown_on_the_form_and_nothing_is_drawn(owner_page, form, field):
    client, _, _, _, url = owner_page
    response = client.post(url, data={"rate": "0.5", "required_accuracy": "0.95", **form}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="sample-error"' in body and field in body and "<html" not in body
    assert db.session.scalar(db.select(db.func.count()).select_from(AcceptanceSample)) == 0


def test_a_second_start_shows_the_pending_sample_with_a_409(owner_page):
    client, _, _, _, url = owner_page
    assert client.post(url, data={"rate": "0.5"}).status_code == 303
    response = client.post(url, data={"rate": "0.5"}, headers=HX)
    assert response.status_code == 409 and 'id="pending-sample"' in response.get_data(as_text=True)


def test_judging_a_sample_on_the_page_goes_image_by_image_to_the_outcome(owner_page):
    client, _, _, task, url = owner_page
    created = client.post(url, data={"rate": "0.5", "seed": "3"})
    assert created.status_code == 303
    sample_url = created.headers["Location"]
    page = client.get(sample_url).get_data(as_text=True)
    assert "Image 1 of 3" in page and 'id="sample-accept"' in page and "sampling.js" in page
    sample = db.session.scalar(db.select(AcceptanceSample))
    items = [item.image_id for item in sampling.items_of(sample)]
    answer = client.post(f"{sample_url}/items/{items[0]}", data={"verdict": "accept"}, headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in body and "Image 2 of 3" in body and "1 of 3" in body
    client.post(f"{sample_url}/items/{items[1]}", data={"verdict": "accept"}, headers=HX)
    last = client.post(f"{sample_url}/items/{items[2]}", data={"verdict": "accept"}, headers=HX).get_data(as_text=True)
    assert 'data-outcome="passed"' in last and "passes" in last and 'id="sample-accept"' not in last
    late = client.post(f"{sample_url}/items/{items[2]}", data={"verdict": "reject"}, headers=HX)
    assert late.status_code == 409 and "decided" in late.get_data(as_text=True)
    assert db.session.scalar(db.select(SampleItem.verdict).where(SampleItem.image_id == items[2])) == "accept"


def test_an_unknown_verdict_and_an_image_outside_the_sample_are_refused(owner_page):
    client, owner, dataset, task, url = owner_page
    sample = sampling.start_sample(task, owner, rate=0.2, seed=1)
    drawn = [item.image_id for item in sampling.items_of(sample)]
    inside = drawn[0]
    outside = db.session.scalar(db.select(Image.id).where(Image.dataset_id == dataset.id, Image.id.not_in(drawn)))
    base = f"{url}/{sample.id}/items"
    assert client.post(f"{base}/{inside}", data={"verdict": "maybe"}, headers=HX).status_code == 422
    assert client.post(f"{base}/{outside}", data={"verdict": "accept"}, headers=HX).status_code == 404
    assert sampling.estimate(sample)["decided"] == 0


def test_a_url_naming_a_sample_of_another_task_is_404(owner_page):
    client, owner, dataset, task, url = owner_page
    ids = insert_images(dataset, 2, start=100)
    other = accepted_task(dataset, owner, ids[-2:], name="Other")
    sample = sampling.start_sample(other, owner, rate=1)
    assert client.get(f"{url}/{sample.id}").status_code == 404
    assert client.post(f"{url}/{sample.id}/items/{ids[-1]}", data={"verdict": "accept"}).status_code == 404
