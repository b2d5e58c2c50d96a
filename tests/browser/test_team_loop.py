"""The whole team loop in real browsers, with three real accounts (issue 9): the admin builds a team
with a labeler and a reviewer and gives them five images; the labeler labels and submits them; the
reviewer rejects one with a comment and accepts the rest; the labeler reads the comment, fixes the
image and submits it again; the reviewer accepts it; the admin, who owns the dataset, runs
acceptance sampling; and the statistics show exactly that history."""

import pytest

from core.extensions import db
from models import Image, Review
from tests.browser.test_labeling import add_images, add_label, drag, wait_saved
from tests.browser.test_task_queue import open_canvas, signed_in_page
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser


def test_team_builds_labels_reviews_fixes_samples_and_counts(browser, live_server):
    admin = make_user("admin@example.com", is_admin=True, name="Ada")
    lara = make_user("lara@example.com", name="Lara")
    rex = make_user("rex@example.com", name="Rex")
    dataset = make_dataset(admin, name="Harbour", type="detection")
    ids = add_images(dataset, 6)
    add_label(dataset, "crane", "1", "box", "#e03131", 0)
    errors = []

    # The admin: a workforce with Lara (labeler) and Rex (reviewer), attached to the dataset.
    boss = signed_in_page(browser, live_server, admin, errors)
    boss.click("header nav >> text=Workforces")
    boss.fill("#create-workforce input[name=name]", "Harbour team")
    boss.click("#create-workforce button")
    boss.wait_for_url("**/workforces/*")
    for email, role in (("lara@example.com", "labeler"), ("rex@example.com", "reviewer")):
        boss.fill("#add-workforce-member input[name=email]", email)
        boss.select_option("#add-workforce-member select[name=role]", role)
        boss.click("#add-workforce-member button")
        boss.locator(f"#workforce-members tr[data-member='{email}']").wait_for()
    boss.goto(f"/datasets/{dataset.id}")
    boss.select_option("#attach-workforce select[name=workforce_id]", label="Harbour team")
    boss.click("#attach-workforce button")
    boss.locator("#dataset-workforces tr[data-workforce='Harbour team']").wait_for()

    # Five images of the grid become a task for the workforce's labelers.
    boss.goto(f"/datasets/{dataset.id}/images/")
    for image_id in ids[:5]:
        boss.locator(f"input[name=image_ids][value='{image_id}']").check()
    boss.get_by_role("button", name="Add to task").click()
    boss.wait_for_url("**/tasks/new?image_ids=*")
    boss.get_by_label("Name").fill("Cranes")
    boss.check("input[name=assign_to][value=workforce]")
    boss.fill("input[name=sampling_percent]", "40")
    boss.locator("#create-task").click()
    boss.locator("#task[data-complete=yes]").wait_for(timeout=90000)
    assert boss.locator("#task-images").inner_text() == "5"
    assert boss.locator("#task-members-table tr[data-member='lara@example.com'] .member-open").inner_text() == "5"

    # Lara labels and submits all five, one after the other.
    labeler = signed_in_page(browser, live_server, lara, errors)
    labeler.goto("/work")
    labeler.locator("#my-tasks tr[data-task=Cranes]").get_by_role("link", name="Start").click()
    for n, image_id in enumerate(ids[:5], start=1):
        labeler.wait_for_url(f"**/images/{image_id}/label?task_id=*")
        open_canvas(labeler)
        assert labeler.locator("#lb-task-position").inner_text() == f"{n} of 5 in Cranes"
        wait_saved(labeler, 0)
        drag(labeler, (60, 150), (180, 215))
        labeler.keyboard.press("1")
        wait_saved(labeler, 1)
        labeler.keyboard.press("Enter")
    labeler.wait_for_url("**/tasks/*/start")
    assert "Nothing is left for you in Cranes" in labeler.locator("#work-done").inner_text()

    # Rex rejects the first with a comment and accepts the other four, by key.
    reviewer = signed_in_page(browser, live_server, rex, errors)
    reviewer.goto(f"/datasets/{dataset.id}/review/")
    reviewer.get_by_role("link", name="Start reviewing").click()
    for n, image_id in enumerate(ids[:5]):
        reviewer.wait_for_url(f"**/images/{image_id}/label?review=1*")
        open_canvas(reviewer)
        if n == 0:
            reviewer.keyboard.press("Shift+R")
            reviewer.locator("#lb-reject-comment").fill("Two cranes here: box the second one")
            reviewer.locator("#lb-reject-send").click()
        else:
            reviewer.keyboard.press("Shift+A")
    reviewer.wait_for_url("**/review/?*empty=1*")

    # Lara: the rejected image comes back first, with the comment; she fixes and resubmits it.
    labeler.goto("/work")
    labeler.locator("#my-tasks tr[data-task=Cranes]").get_by_role("link", name="Continue").click()
    labeler.wait_for_url(f"**/images/{ids[0]}/label?task_id=*")
    open_canvas(labeler)
    assert labeler.locator("#lb-rejection-comment").inner_text() == "Two cranes here: box the second one"
    revision = labeler.evaluate("() => window.loupeLabeling.revision")
    wait_saved(labeler, revision)
    drag(labeler, (250, 40), (310, 100))
    labeler.keyboard.press("1")
    wait_saved(labeler, revision + 1)
    labeler.locator("#lb-submit").click()
    labeler.wait_for_url("**/tasks/*/start")

    # Rex accepts the fixed image.
    reviewer.goto(f"/datasets/{dataset.id}/review/start")
    reviewer.wait_for_url(f"**/images/{ids[0]}/label?review=1*")
    open_canvas(reviewer)
    reviewer.locator("#lb-accept").click()
    reviewer.wait_for_url("**/review/?*empty=1*")
    db.session.commit()
    db.session.expire_all()
    assert [db.session.get(Image, i).state.value for i in ids] == ["accepted"] * 5 + ["unlabeled"]
    assert [r.verdict.value for r in db.session.scalars(db.select(Review).order_by(Review.id))] == ["reject"] + ["accept"] * 5

    # The admin (the owner) runs acceptance sampling on the task at its 40 %: two images, both right.
    boss.goto(f"/datasets/{dataset.id}")
    boss.click("a.sampling-link >> text=Cranes")
    assert boss.locator("#sample-rate").input_value() == "0.4"
    boss.click("#sample-start")
    boss.locator("#sample-work").wait_for()
    assert boss.locator("#sample-position").inner_text().startswith("Image 1 of 2")
    boss.click("#sample-accept")
    boss.locator("#sample-position >> text=Image 2 of 2").wait_for()
    boss.keyboard.press("a")
    boss.locator("#sample-outcome[data-outcome=passed]").wait_for()
    assert boss.locator("#sample-accuracy").inner_text() == "100.0%"

    # The statistics tell exactly that story: Lara handed in 5 images (one twice), 5 accepted,
    # 1 rejection in 6 verdicts.
    boss.goto(f"/datasets/{dataset.id}")
    row = boss.locator(f"#team-table tr.member-row[data-user-id='{lara.id}'] td")
    row.first.wait_for()  # the card loads after the page
    figures = [row.nth(i).inner_text().strip() for i in range(row.count())]
    assert figures[:7] == ["Lara", "5", "0", "5", "5", "0", "100.0%"], figures
    assert figures[9] == "16.7%", figures  # rejection rate: 1 of 6 verdicts
    assert errors == []
