"""The task pages: the new-task form from the grid's selection or filter, a task's page with
reassigning, My work with Start, and the canvas inside a task queue or in review mode."""

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Assignment, Image, ImageState, LabelingTask, Review, Verdict
from services import tasks as task_service
from tests.factories import make_dataset, make_user
from tests.support import insert_images, location_path, member, sign_in


@pytest.fixture
def team(app_ctx, client):
    owner = make_user(name="Olga Owner")
    dataset = make_dataset(owner, name="Street")
    ana, ben = member(dataset, "labeler", name="Ana"), member(dataset, "labeler", name="Ben")
    ids = insert_images(dataset, 6)
    sign_in(client, owner)
    return owner, dataset, ana, ben, ids


def build(client, run_jobs, dataset, **form) -> LabelingTask:
    data = {"name": "Cars", "assign_to": "members", "strategy": "round_robin", "review_required": "on", "repetition": "1", **form}
    response = client.post(f"/datasets/{dataset.id}/tasks/", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    run_jobs()
    task = db.session.scalar(select(LabelingTask).order_by(LabelingTask.id.desc()))
    assert location_path(response) == f"/datasets/{dataset.id}/tasks/{task.id}"
    return task


def test_the_form_says_what_the_selection_or_filter_takes(client, team):
    owner, dataset, ana, ben, ids = team
    picked = client.get(f"/datasets/{dataset.id}/tasks/new?image_ids={ids[0]},{ids[1]}").get_data(as_text=True)
    assert "The 2 selected images" in picked and f'name="image_ids" value="{ids[0]},{ids[1]}"' in picked
    db.session.execute(db.update(Image).where(Image.id.in_(ids[:3])).values(split="train"))
    db.session.commit()
    filtered = client.get(f"/datasets/{dataset.id}/tasks/new?split=train").get_data(as_text=True)
    assert "All 3 images matching" in filtered and 'name="split" value="train"' in filtered
    assert "All 6 images of the dataset" in client.get(f"/datasets/{dataset.id}/tasks/new").get_data(as_text=True)


def test_a_task_made_from_the_form_from_a_filter(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    db.session.execute(db.update(Image).where(Image.id.in_(ids[:4])).values(split="train"))
    db.session.commit()
    task = build(client, run_jobs, dataset, member_ids=[str(ana.id), str(ben.id)], split="train", strategy="batch", batch_size="2")
    assert task.complete and task.image_count == 4 and task.batch_size == 2
    page = client.get(f"/datasets/{dataset.id}/tasks/{task.id}").get_data(as_text=True)
    assert 'id="task-images">4<' in page and "Ana" in page and "Ben" in page
    listing = client.get(f"/datasets/{dataset.id}/tasks/").get_data(as_text=True)
    assert 'data-task="Cars"' in listing
    # The new form now counts only the images no task holds.
    assert "All 2 images of the dataset" in client.get(f"/datasets/{dataset.id}/tasks/new").get_data(as_text=True)


@pytest.mark.parametrize("form, message", [
    ({"name": ""}, "needs a name"),
    ({"name": "x" * 201}, "at most 200"),
    ({}, "member_ids must be a non-empty list"),
    ({"strategy": "batch", "batch_size": "0"}, "batch_size must be"),
    ({"strategy": "batch", "batch_size": "lots"}, "batch_size must be a whole number"),
    ({"strategy": "shuffle"}, "Unknown strategy"),
    ({"sampling_percent": "150"}, "sampling_rate must be"),
    ({"sampling_percent": "a lot"}, "percentage"),
    ({"repetition": "3"}, "repetition 3 needs as many labelers"),
    ({"assign_to": "workforce", "workforce_id": "77"}, "not attached"),
    ({"image_ids": "1,2,x"}, "image_ids must be a whole number"),
    ({"member_ids": ["99999"]}, "Not active members"),
])
def test_bad_forms_show_the_error_and_make_nothing(client, team, form, message):
    owner, dataset, ana, ben, ids = team
    data = {"name": "Cars", "assign_to": "members", "strategy": "round_robin", "repetition": "1", **form}
    if "member_ids" not in form and form != {}:
        data["member_ids"] = [str(ana.id)]
    response = client.post(f"/datasets/{dataset.id}/tasks/", data=data)
    assert response.status_code in (400, 422)
    page = response.get_data(as_text=True)
    assert 'id="task-error"' in page and message in page, page[:3000]
    assert not db.session.scalar(select(func.count()).select_from(LabelingTask))


def test_reassign_unassign_and_members_on_the_task_page(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = build(client, run_jobs, dataset, member_ids=[str(ana.id)], image_ids=",".join(map(str, ids[:3])))
    url = f"/datasets/{dataset.id}/tasks/{task.id}"
    added = client.post(f"{url}/members", data={"user_id": str(ben.id)}, headers={"HX-Request": "true"})
    assert added.status_code == 200 and "Ben joined the task" in added.get_data(as_text=True)
    moved = client.post(f"{url}/reassign", data={"from_member_id": str(ana.id), "to_member_id": str(ben.id)}, headers={"HX-Request": "true"})
    assert "3 open images moved" in moved.get_data(as_text=True)
    gone = client.post(f"{url}/unassign", data={"from_member_id": str(ben.id)}, headers={"HX-Request": "true"})
    assert "3 open images unassigned" in gone.get_data(as_text=True) and 'id="task-unassigned"' in gone.get_data(as_text=True)
    refused = client.post(f"{url}/reassign", data={"from_member_id": "", "to_member_id": str(owner.id)}, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "to_member_id must be a member of this task" in refused.get_data(as_text=True)
    back = client.post(f"{url}/reassign", data={"from_member_id": "", "to_member_id": str(ana.id)})
    assert back.status_code == 303
    assert set(db.session.scalars(select(Assignment.labeler_id).where(Assignment.task_id == task.id))) == {ana.id}
    left = client.post(f"{url}/members/{ana.id}/delete", headers={"HX-Request": "true"})
    assert "3 open images handed back" in left.get_data(as_text=True)
    task_id = task.id
    assert client.post(f"{url}/delete").status_code == 303
    db.session.expire_all()
    assert db.session.get(LabelingTask, task_id) is None


def test_my_work_start_and_the_canvas_in_the_queue(client, new_client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = build(client, run_jobs, dataset, member_ids=[str(ana.id), str(ben.id)], image_ids=",".join(map(str, ids[:4])))
    labeler = new_client()
    sign_in(labeler, ana)
    work = labeler.get("/work").get_data(as_text=True)
    assert 'data-task="Cars"' in work and "0 of 2 done" in work and ">Start<" in work
    start = labeler.get(f"/tasks/{task.id}/start")
    assert start.status_code == 303 and start.headers["Location"].endswith(f"/images/{ids[0]}/label?task_id={task.id}")
    canvas = labeler.get(start.headers["Location"]).get_data(as_text=True)
    assert "1 of 2 in Cars" in canvas and 'id="lb-later"' in canvas and "Nothing to label" in canvas
    assert f'"start": "/tasks/{task.id}/start"' in canvas.replace("\\u0026", "&")
    # A rejected image shows the reviewer's comment.
    image = db.session.get(Image, ids[0])
    image.state = ImageState.rejected
    db.session.add(Review(image_id=image.id, reviewer_id=owner.id, verdict=Verdict.reject, comment="Box the <bus> too"))
    db.session.commit()
    canvas = labeler.get(start.headers["Location"]).get_data(as_text=True)
    assert "Box the &lt;bus&gt; too" in canvas and "by Olga Owner" in canvas
    # Done: Start says so instead of opening an image.
    for image_id in (ids[0], ids[2]):
        db.session.execute(db.update(Assignment).where(Assignment.image_id == image_id).values(state="submitted"))
    db.session.commit()
    finished = labeler.get(f"/tasks/{task.id}/start")
    assert finished.status_code == 200 and "Nothing is left for you in Cars" in finished.get_data(as_text=True)
    # Another dataset's task in the URL is no task at all; review mode is for reviewers only.
    plain = labeler.get(f"/datasets/{dataset.id}/images/{ids[0]}/label?task_id=999&review=1").get_data(as_text=True)
    assert "lb-task-position" not in plain and "lb-accept" not in plain and "Review queue" not in plain


def test_review_mode_offers_a_verdict_only_on_an_image_waiting(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    db.session.get(Image, ids[0]).state = ImageState.to_review
    db.session.commit()
    waiting = client.get(f"/datasets/{dataset.id}/images/{ids[0]}/label?review=1").get_data(as_text=True)
    assert 'id="lb-accept"' in waiting and 'id="lb-reject-form"' in waiting and "Review queue" in waiting
    other = client.get(f"/datasets/{dataset.id}/images/{ids[1]}/label?review=1").get_data(as_text=True)
    assert 'id="lb-accept"' not in other and "it takes no verdict" in other


def test_the_grid_filters_by_task_and_assignee(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = build(client, run_jobs, dataset, member_ids=[str(ana.id), str(ben.id)], image_ids=",".join(map(str, ids[:4])))
    task_service.unassign(task, {"image_ids": [ids[2]]})

    def shown(query):
        response = client.get(f"/api/v1/datasets/{dataset.id}/images?{query}")
        assert response.status_code == 200, response.json
        return [i["id"] for i in response.json["items"]]

    assert shown(f"task_id={task.id}") == ids[:4]
    assert shown(f"assignee={ana.id}") == [ids[0]]
    assert shown(f"assignee={ben.id}&task_id={task.id}") == [ids[1], ids[3]]
    assert shown("assignee=none") == [ids[2]]
    grid = client.get(f"/datasets/{dataset.id}/images/?assignee={ana.id}").get_data(as_text=True)
    assert f'data-image-id="{ids[0]}"' in grid and f'data-image-id="{ids[1]}"' not in grid
    for bad in ("assignee=ana", "task_id=-1", "assignee=" + "9" * 30):
        assert client.get(f"/api/v1/datasets/{dataset.id}/images?{bad}").status_code in (400, 422), bad
