"""A labeling task in real browsers: a manager makes it from the grid's selection, a labeler works
through their queue on the canvas (n of N, Later, Nothing to label, on to the next after a submit),
a reviewer rejects one on the canvas with a comment, and the labeler gets it back first with it."""

import pytest

from core.extensions import db
from models import Assignment, AssignmentState, Image, ImageState
from tests.browser.test_labeling import add_images, add_label, drag, server_annotations, wait_saved
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import member

pytestmark = pytest.mark.browser


def open_canvas(page) -> None:
    page.wait_for_function("() => { const i = document.querySelector('#lb-svg image'); return i && i.getBBox().width === 400; }")


def signed_in_page(browser, live_server: str, user, errors: list):
    """A browser of the user's own (a context of its own, so cookies stay apart), signed in; page errors go to `errors`."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)
    return page


def states(ids) -> list[str]:
    db.session.commit()
    db.session.expire_all()
    return [db.session.get(Image, i).state.value for i in ids]


def test_a_task_from_the_grid_worked_through_on_the_canvas_and_sent_back_by_a_reviewer(browser, live_server):
    owner = make_user(name="Olga")
    dataset = make_dataset(owner, name="Street", type="detection")
    ids = add_images(dataset, 4)
    add_label(dataset, "car", "1", "box", "#e03131", 0)
    ana = member(dataset, "labeler", name="Ana")
    rita = member(dataset, "reviewer", name="Rita")
    errors = []

    # The manager selects three tiles and makes a task of them for Ana.
    manager = signed_in_page(browser, live_server, owner, errors)
    manager.goto(f"/datasets/{dataset.id}/images/")
    for image_id in ids[:3]:
        manager.locator(f"input[name=image_ids][value='{image_id}']").check()
    manager.get_by_role("button", name="Add to task").click()
    manager.wait_for_url("**/tasks/new?image_ids=*")
    assert "The 3 selected images" in manager.locator("#task-source").inner_text()
    manager.get_by_label("Name").fill("Cars")
    manager.locator(f"#task-members input[value='{ana.id}']").check()
    manager.locator("#create-task").click()
    manager.wait_for_url("**/tasks/*")
    manager.locator("#task[data-complete=yes]").wait_for(timeout=90000)  # the page polls while the job deals
    assert manager.locator("#task-images").inner_text() == "3"
    assert manager.locator(f"#task-members-table tr[data-member='{ana.email}'] .member-open").inner_text() == "3"

    # Ana: My work → Start opens her first image, 1 of 3.
    labeler = signed_in_page(browser, live_server, ana, errors)
    labeler.goto("/work")
    labeler.locator("#my-tasks tr[data-task=Cars]").get_by_role("link", name="Start").click()
    labeler.wait_for_url(f"**/images/{ids[0]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-task-position").inner_text() == "1 of 3 in Cars"
    # Later: the first stays open and moves to the end; the second comes up.
    labeler.locator("#lb-later").click()
    labeler.wait_for_url(f"**/images/{ids[1]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-task-position").inner_text() == "1 of 3 in Cars"
    # A box, submitted: on to the next open image (the third), now 2 of 3.
    wait_saved(labeler, 0)
    drag(labeler, (60, 150), (180, 215))
    labeler.keyboard.press("1")
    wait_saved(labeler, 1)
    labeler.locator("#lb-submit").click()
    labeler.wait_for_url(f"**/images/{ids[2]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-task-position").inner_text() == "2 of 3 in Cars"
    # Nothing to label on the third; then the one put off comes back last.
    labeler.locator("#lb-skip").click()
    labeler.wait_for_url(f"**/images/{ids[0]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-task-position").inner_text() == "3 of 3 in Cars"
    assert states(ids[:3]) == ["unlabeled", "to_review", "to_review"]
    # The image outside the task is not hers to see.
    assert labeler.goto(f"/datasets/{dataset.id}/images/{ids[3]}/label").status == 404

    # Rita reviews on the canvas: Start reviewing opens the first image waiting, she rejects it with a comment.
    reviewer = signed_in_page(browser, live_server, rita, errors)
    reviewer.goto(f"/datasets/{dataset.id}/review/")
    reviewer.get_by_role("link", name="Start reviewing").click()
    reviewer.wait_for_url(f"**/images/{ids[1]}/label?review=1*")
    open_canvas(reviewer)
    reviewer.keyboard.press("Shift+R")
    reviewer.locator("#lb-reject-comment").fill("The car's bumper is outside the box")
    reviewer.locator("#lb-reject-send").click()
    reviewer.wait_for_url(f"**/images/{ids[2]}/label?review=1*")  # on to the next waiting
    open_canvas(reviewer)
    reviewer.keyboard.press("Shift+A")
    reviewer.wait_for_url("**/review/?*empty=1*")
    assert states(ids[:3]) == ["unlabeled", "rejected", "accepted"]

    # Ana's queue gives her the rejected image first, with the comment; she fixes and resubmits it.
    labeler.goto("/work")
    assert "1 sent back" in labeler.locator("#my-tasks tr[data-task=Cars]").inner_text()
    labeler.locator("#my-tasks tr[data-task=Cars]").get_by_role("link", name="Continue").click()
    labeler.wait_for_url(f"**/images/{ids[1]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-rejection-comment").inner_text() == "The car's bumper is outside the box"
    assert "by Rita" in labeler.locator("#lb-rejection").inner_text()
    wait_saved(labeler, labeler.evaluate("() => window.loupeLabeling.revision"))
    before = labeler.evaluate("() => window.loupeLabeling.revision")
    drag(labeler, (40, 140), (200, 225))
    labeler.keyboard.press("1")
    wait_saved(labeler, before + 1)
    labeler.locator("#lb-submit").click()
    labeler.wait_for_url(f"**/images/{ids[0]}/label?task_id=*")
    assert states(ids[1:2]) == ["to_review"] and len(server_annotations(ids[1])) == 2
    turns = dict(db.session.execute(db.select(Assignment.image_id, Assignment.state).where(Assignment.image_id.in_(ids[:3]))).all())
    assert turns == {ids[0]: AssignmentState.assigned, ids[1]: AssignmentState.submitted, ids[2]: AssignmentState.submitted}
    assert db.session.get(Image, ids[3]).state == ImageState.unlabeled
    assert errors == []
