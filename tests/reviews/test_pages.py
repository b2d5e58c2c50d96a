"""The Review tab: the queue page, "Start reviewing" to the canvas, and the grid review mode."""

import re

from core.extensions import db
from core.queues import get_redis
from models import Image, ImageState, Label
from services import annotations, reviews
from services.datasets import create_dataset
from tests.reviews.conftest import make_desk
from tests.support import insert_images, location_path, member, sign_in, tile_ids


def page(client, user, url: str, **headers):
    sign_in(client, user)
    return client.get(url, headers=headers)


def test_the_review_tab_shows_for_reviewers_and_up_only(client, desk):
    tab = f'href="/datasets/{desk.dataset.id}/review/"'
    assert tab in page(client, desk.reviewer, f"/datasets/{desk.dataset.id}").get_data(as_text=True)
    assert tab in page(client, desk.owner, f"/datasets/{desk.dataset.id}/images/").get_data(as_text=True)
    labeler = page(client, desk.labeler, f"/datasets/{desk.dataset.id}/images/")
    assert labeler.status_code == 200 and tab not in labeler.get_data(as_text=True)


def test_the_queue_page_counts_what_waits_and_links_to_the_canvas_and_the_grid(client, desk):
    body = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/").get_data(as_text=True)
    assert re.search(r"<strong>4</strong>\s*images waiting for review", body)
    assert f'href="/datasets/{desk.dataset.id}/review/start"' in body and f'href="/datasets/{desk.dataset.id}/review/grid"' in body
    assert f'<option value="{desk.task.id}" >Cars</option>' in body
    narrowed = client.get(f"/datasets/{desk.dataset.id}/review/?task_id={desk.task.id}", headers={"HX-Request": "true"})
    text = narrowed.get_data(as_text=True)
    assert 'id="review-queue"' in text and "<html" not in text and f"start?task_id={desk.task.id}" in text


def test_start_reviewing_opens_the_next_image_on_the_canvas_in_review_mode(client, desk):
    started = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/start")
    assert started.status_code == 303
    assert started.headers["Location"] == f"/datasets/{desk.dataset.id}/images/{desk.ids[0]}/label?review=1"
    assert get_redis().get(f"loupe:review-lease:{desk.ids[0]}") == str(desk.reviewer.id).encode()
    assert client.get(started.headers["Location"]).status_code == 200, "the canvas takes ?review=1"
    sign_in(client, desk.owner)
    assert client.get(f"/datasets/{desk.dataset.id}/review/start?task_id={desk.task.id}").headers["Location"] == (
        f"/datasets/{desk.dataset.id}/images/{desk.ids[1]}/label?review=1&task_id={desk.task.id}"
    )
    # The canvas's "next" without a verdict moves past the image and gives it back to the others.
    sign_in(client, desk.reviewer)
    skipped = client.get(f"/datasets/{desk.dataset.id}/review/start?after={desk.ids[0]}")
    assert skipped.headers["Location"] == f"/datasets/{desk.dataset.id}/images/{desk.ids[2]}/label?review=1"
    assert get_redis().get(f"loupe:review-lease:{desk.ids[0]}") is None


def test_start_with_nothing_to_review_returns_to_the_queue_saying_so(client, desk):
    reviews.give_verdicts(desk.dataset, desk.owner, desk.ids, "accept")
    started = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/start")
    assert started.status_code == 303 and location_path(started) == f"/datasets/{desk.dataset.id}/review/"
    body = client.get(started.headers["Location"]).get_data(as_text=True)
    assert 'id="review-empty"' in body and "No image is waiting for review" in body and "start-reviewing" not in body


def test_the_grid_shows_only_images_waiting_for_review_with_their_boxes(client, desk):
    reviews.give_verdict(db.session.get(Image, desk.ids[1]), desk.owner, "accept")
    insert_images(desk.dataset, 2, start=200)  # unlabeled: not shown
    body = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/grid").get_data(as_text=True)
    assert tile_ids(body) == [desk.ids[0], desk.ids[2], desk.ids[3]]
    assert body.count('class="ov-box" x="2" y="3" width="20" height="10" stroke="#e6194b"') == 3
    assert 'data-review-url="/api/v1/datasets/%d/reviews"' % desk.dataset.id in body
    assert "js/review_grid.js" in body and "3 waiting for review" in body
    assert f'href="/datasets/{desk.dataset.id}/images/{desk.ids[0]}/label?review=1"' in body, "Label opens the canvas in review mode"


def test_the_grid_of_a_classification_dataset_shows_the_class_names(client, app_ctx):
    desk = make_desk(images=1)
    classes = create_dataset(desk.owner, "Pets", "classification")
    cat = Label(dataset_id=classes.id, name="cat", color="#228be6", default_shape="tag")
    db.session.add(cat)
    db.session.commit()
    [image_id] = insert_images(classes, 1)
    image = db.session.get(Image, image_id)
    annotations.replace_annotations(image, desk.owner, [{"label_id": cat.id, "shape": "tag"}], 0)
    db.session.execute(Image.__table__.update().where(Image.id == image_id).values(state=ImageState.to_review))
    db.session.commit()
    body = page(client, desk.owner, f"/datasets/{classes.id}/review/grid").get_data(as_text=True)
    assert f'<span class="chip" data-label-id="{cat.id}" style="--chip: #228be6">cat</span>' in body


def test_the_grid_scrolls_by_keyset_pages_and_narrows_to_a_task(client, app_ctx):
    desk = make_desk(images=reviews.PAGE + 5)
    first = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/grid").get_data(as_text=True)
    assert tile_ids(first) == desk.ids[: reviews.PAGE]
    more = re.search(r'class="sentinel" hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
    rest = client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert tile_ids(rest) == desk.ids[reviews.PAGE:] and "<html" not in rest and "sentinel" not in rest
    narrowed = client.get(f"/datasets/{desk.dataset.id}/review/grid?task_id={desk.task.id}", headers={"HX-Request": "true"})
    text = narrowed.get_data(as_text=True)
    assert 'id="review-grid"' in text and "<html" not in text and f'<option value="{desk.task.id}" selected>' in text


def test_an_empty_grid_says_so(client, desk):
    reviews.give_verdicts(desk.dataset, desk.owner, desk.ids, "accept")
    body = page(client, desk.reviewer, f"/datasets/{desk.dataset.id}/review/grid").get_data(as_text=True)
    assert "No image is waiting for review." in body and tile_ids(body) == []


def test_bad_query_values_are_a_clear_422(client, desk):
    other = make_desk(images=1, name="Elsewhere")
    sign_in(client, desk.reviewer)
    for url in ("review/grid?cursor=abc", "review/grid?cursor=-4", f"review/grid?cursor={'9' * 40}", "review/?task_id=x",
                f"review/grid?task_id={other.task.id}", f"review/start?task_id={other.task.id}", f"review/?task_id={2**40}",
                "review/start?after=-1", "review/start?after=one"):
        response = client.get(f"/datasets/{desk.dataset.id}/{url}", headers={"HX-Request": "true"})
        assert response.status_code == 422 and 'role="alert"' in response.get_data(as_text=True), url


def test_labelers_and_outsiders_cannot_open_the_review_pages(client, desk):
    outsider = member(make_desk(images=1, name="Elsewhere").dataset, "reviewer")
    for path in ("review/", "review/start", "review/grid"):
        assert page(client, desk.labeler, f"/datasets/{desk.dataset.id}/{path}").status_code == 403
        assert page(client, outsider, f"/datasets/{desk.dataset.id}/{path}").status_code == 404
