"""Task and member statistics on a hand-built history: exact counts, medians, rates and speeds,
and who sees which rows (services/team_stats.py, the API and the overview)."""

import pytest

from core.extensions import db
from models import AssignmentState, ImageState
from services import team_stats
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, member, sign_in
from tests.team_stats.support import make_task, set_state, turn, verdict


@pytest.fixture
def history(app_ctx):
    """Labeler A: 4 turns (one accepted, one rejected and open again, one waiting for review, one
    never opened); labeler B: 3 turns, all accepted; one turn handed back (nobody holds it)."""
    owner = make_user(name="Owner")
    dataset = make_dataset(owner, name="Parts")
    ids = insert_images(dataset, 8)
    a = member(dataset, "labeler", name="Ann")
    b = member(dataset, "labeler", name="Bob")
    reviewer = member(dataset, "reviewer", name="Rita")
    task = make_task(dataset, [a, b])
    a0 = turn(task, ids[0], a, opened=0, submitted=30)
    a1 = turn(task, ids[1], a, opened=40, state=AssignmentState.assigned)  # rejected: open again
    turn(task, ids[2], a, opened=100, submitted=190)
    turn(task, ids[3], a)
    b4 = turn(task, ids[4], b, opened=0, submitted=20)
    b5 = turn(task, ids[5], b, opened=10, submitted=70)
    b7 = turn(task, ids[7], b, opened=70, submitted=80)
    turn(task, ids[6], None)
    set_state([ids[0], ids[4], ids[5], ids[7]], ImageState.accepted)
    set_state([ids[1]], ImageState.rejected)
    set_state([ids[2]], ImageState.to_review)
    verdict(a0, reviewer, "accept")
    verdict(a1, reviewer, "reject")
    for t in (b4, b5, b7):
        verdict(t, reviewer, "accept")
    return dict(owner=owner, dataset=dataset, task=task, a=a, b=b, reviewer=reviewer, ids=ids)


ANN = {
    "assigned": 4, "open": 2, "submitted": 2, "accepted": 1, "rejected": 1, "progress": 50.0,
    "images_per_hour": round(2 * 3600 / 190, 2), "median_seconds": 60.0, "reviews": 2, "rejection_rate": 0.5, "agreement": None,
}
BOB = {
    "assigned": 3, "open": 0, "submitted": 3, "accepted": 3, "rejected": 0, "progress": 100.0,
    "images_per_hour": 135.0, "median_seconds": 20.0, "reviews": 3, "rejection_rate": 0.0, "agreement": None,
}
TASK = {
    "assigned": 8, "open": 3, "submitted": 5, "accepted": 4, "rejected": 1, "progress": 62.5, "unassigned": 1,
    "images_per_hour": round(5 * 3600 / 190, 2), "median_seconds": 30.0, "reviews": 5, "rejection_rate": 0.2, "agreement": None,
}


def subset(row: dict, expected: dict) -> dict:
    return {key: row[key] for key in expected}


def test_task_and_member_figures_are_exact_on_a_hand_built_history(history):
    stats = team_stats.task_stats(history["task"], history["owner"])
    assert subset(stats, TASK) == TASK
    rows = {row["name"]: row for row in stats["members"]}
    assert list(rows) == ["Ann", "Bob"]
    assert subset(rows["Ann"], ANN) == ANN
    assert subset(rows["Bob"], BOB) == BOB


def test_a_labeler_sees_only_their_own_row_and_the_task_over_their_own_turns(history):
    stats = team_stats.task_stats(history["task"], history["a"])
    assert [row["name"] for row in stats["members"]] == ["Ann"]
    assert subset(stats, {key: ANN[key] for key in ("assigned", "open", "submitted", "accepted", "rejected", "median_seconds")}) == {
        key: ANN[key] for key in ("assigned", "open", "submitted", "accepted", "rejected", "median_seconds")
    }
    overview = team_stats.dataset_team_stats(history["dataset"], history["a"])
    assert [row["name"] for row in overview["members"]] == ["Ann"]


def test_a_member_without_turns_has_a_row_of_zeros_and_no_rates(history):
    idle = member(history["dataset"], "labeler", name="Cid")
    task = make_task(history["dataset"], [idle], name="Empty")
    stats = team_stats.task_stats(task, history["owner"])
    assert stats["assigned"] == 0 and stats["progress"] == 0.0 and stats["median_seconds"] is None
    (row,) = stats["members"]
    assert row["name"] == "Cid" and row["assigned"] == 0 and row["images_per_hour"] is None and row["rejection_rate"] is None


def test_agreement_is_none_with_repetition_one_or_without_two_versions_of_an_image(history):
    assert team_stats.agreement(history["task"]) is None
    history["task"].repetition = 2
    db.session.commit()
    assert team_stats.task_stats(history["task"], history["owner"])["agreement"] is None


def test_dataset_members_add_up_over_every_task(history):
    other = make_task(history["dataset"], [history["a"]], name="Second")
    turn(other, history["ids"][3], history["a"], opened=0, submitted=50)
    overview = team_stats.dataset_team_stats(history["dataset"], history["owner"])
    assert [task["name"] for task in overview["tasks"]] == ["Boxes", "Second"]
    ann = next(row for row in overview["members"] if row["name"] == "Ann")
    assert ann["assigned"] == 5 and ann["submitted"] == 3 and ann["median_seconds"] == 50.0


def test_the_api_answers_task_stats_and_dataset_stats_with_tasks_and_members(client, history):
    headers = token_for(history["owner"])
    task = client.get(f"/api/v1/tasks/{history['task'].id}/stats", headers=headers)
    assert task.status_code == 200, task.get_data(as_text=True)
    assert subset(task.get_json(), TASK) == TASK
    stats = client.get(f"/api/v1/datasets/{history['dataset'].id}/stats", headers=headers).get_json()
    assert stats["images"] == 8 and [t["name"] for t in stats["tasks"]] == ["Boxes"]
    assert {row["name"] for row in stats["members"]} == {"Ann", "Bob"}
    as_ann = client.get(f"/api/v1/datasets/{history['dataset'].id}/stats", headers=token_for(history["a"])).get_json()
    assert [row["name"] for row in as_ann["members"]] == ["Ann"] and [row["name"] for row in as_ann["tasks"][0]["members"]] == ["Ann"]


def test_the_overview_shows_the_task_table_and_progress_charts(client, history):
    sign_in(client, history["owner"])
    overview = client.get(f"/datasets/{history['dataset'].id}").get_data(as_text=True)
    card = f'hx-get="/datasets/{history["dataset"].id}/team-stats" hx-trigger="load"'
    assert card in overview, "the overview loads the card after the page"
    page = client.get(f"/datasets/{history['dataset'].id}/team-stats", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="team-table"' in page and 'id="chart-members"' in page
    assert 'data-progress="50.0"' in page and 'data-progress="100.0"' in page
    assert "Acceptance sampling" in page
    sign_in(client, history["a"])
    page = client.get(f"/datasets/{history['dataset'].id}/team-stats", headers={"HX-Request": "true"}).get_data(as_text=True)
    table = page.split('id="team-stats"', 1)[1].split("</table>", 1)[0]
    assert "Ann" in table and "Bob" not in table and "Acceptance sampling" not in page


def test_a_workforce_page_shows_the_figures_of_its_tasks(client, history):
    from services import workforces as workforce_service

    owner = history["owner"]
    workforce = workforce_service.create_workforce("Crew", by=owner)
    history["task"].workforce_id = workforce.id
    db.session.commit()
    sign_in(client, owner)
    page = client.get(f"/workforces/{workforce.id}").get_data(as_text=True)
    section = page.split('id="workforce-stats"', 1)[1].split("</section>", 1)[0]
    assert 'id="team-table"' in section and f'data-task-id="{history["task"].id}"' in section and "Ann" in section
    # Tasks on datasets the viewer cannot see stay out.
    outsider = make_user(name="Out")
    workforce_service.add_member(workforce, outsider.email, "labeler")
    sign_in(client, outsider)
    page = client.get(f"/workforces/{workforce.id}").get_data(as_text=True)
    assert "No labeling task yet." in page.split('id="workforce-stats"', 1)[1].split("</section>", 1)[0]
