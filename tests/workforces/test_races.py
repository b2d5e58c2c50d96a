"""Two (or more) at once, against a real HTTP server on SQLite and PostgreSQL: one wins, the others
get a clear 409 (or 410 for a used link), never a 500, and nothing is half made."""

import requests
from sqlalchemy import func, select

from core.extensions import db
from models import DatasetWorkforce, User, Workforce, WorkforceInvite, WorkforceMember, WorkforceRole
from services import workforces as service
from tests.api.test_races import at_once, fresh, signed_in_browser, statuses
from tests.factories import make_dataset, make_user, token_for
from tests.support import hidden_csrf
from tests.workforces.support import team

CLIENTS = 8
ROUNDS = ["Night shift", "zweite Schicht", "x" * 120]  # several rounds: one race may be won by luck


def test_many_clients_creating_the_same_workforce_name_get_one_201_and_409s(app_ctx, live_server):
    owner = make_user()
    make_dataset(owner)  # an owner may create workforces
    headers = token_for(owner)
    for name in ROUNDS:
        responses = at_once(CLIENTS, lambda i: requests.post(f"{live_server}/api/v1/workforces", json={"name": name}, headers=headers, timeout=60))
        assert sorted(statuses(responses)) == [201] + [409] * (CLIENTS - 1), [r.text for r in responses]
        assert all(r.json()["error"]["code"] == "conflict" for r in responses if r.status_code == 409)
        fresh()
        assert db.session.scalar(select(func.count()).select_from(Workforce).where(Workforce.name == name)) == 1
    # Each workforce has its one creator row: no loser left a member behind.
    assert db.session.scalar(select(func.count()).select_from(WorkforceMember)) == len(ROUNDS)


def _signup_browser(base: str, token: str) -> tuple[requests.Session, str]:
    browser = requests.Session()
    return browser, hidden_csrf(browser.get(f"{base}/invites/{token}").text)


def test_many_people_signing_up_with_one_invite_link_at_once_make_one_account(app_ctx, live_server):
    owner = make_user()
    for round_ in range(3):
        workforce = service.create_workforce(f"Team {round_}", by=owner)
        _, token = service.create_invite(workforce, "labeler", by=owner)
        browsers = [_signup_browser(live_server, token) for _ in range(CLIENTS)]
        responses = at_once(CLIENTS, lambda i: browsers[i][0].post(
            f"{live_server}/invites/{token}", allow_redirects=False, timeout=60,
            data={"email": f"p{round_}-{i}@example.com", "display_name": f"P{i}", "password": "long enough", "csrf_token": browsers[i][1]},
        ))
        assert sorted(statuses(responses)) == [303] + [410] * (CLIENTS - 1), [r.text[:200] for r in responses]
        assert all("ask for a new one" in r.text for r in responses if r.status_code == 410)
        fresh()
        made = db.session.scalars(select(User.email).where(User.email.like(f"p{round_}-%"))).all()
        assert len(made) == 1
        joined = db.session.scalars(select(WorkforceMember.user_id).where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.role == WorkforceRole.labeler)).all()
        assert joined == [User.by_email(made[0]).id]


def test_signed_in_users_joining_with_one_link_at_once_make_one_member(app_ctx, live_server):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    _, token = service.create_invite(workforce, "reviewer", by=owner)
    people = [make_user() for _ in range(CLIENTS)]
    sessions = [signed_in_browser(live_server, person) for person in people]

    def join(i):
        cookies, csrf = sessions[i]
        with requests.Session() as browser:
            browser.cookies.update(cookies)
            return browser.post(f"{live_server}/invites/{token}", data={"csrf_token": csrf}, allow_redirects=False, timeout=60)

    responses = at_once(CLIENTS, join)
    assert sorted(statuses(responses)) == [303] + [410] * (CLIENTS - 1), [r.text[:200] for r in responses]
    fresh()
    assert db.session.scalar(select(func.count()).select_from(WorkforceMember).where(WorkforceMember.workforce_id == workforce.id)) == 2
    invite = db.session.scalar(select(WorkforceInvite))
    assert invite.used_by_id in {p.id for p in people}


def test_two_team_admins_demoting_each_other_at_once_leave_one_team_admin(app_ctx, live_server):
    for round_ in range(3):
        owner = make_user()
        workforce, users = team(owner, f"Pair {round_}", other="team_admin")
        # The creator's own rights (created_by_id) are not what this is about: both act as plain team admins.
        workforce.created_by_id = None
        db.session.commit()
        rows = {m.user_id: m.id for m in db.session.scalars(select(WorkforceMember).where(WorkforceMember.workforce_id == workforce.id))}
        # Plain values: the threads must not touch ORM objects of the test's session.
        urls = [f"{live_server}/api/v1/workforces/{workforce.id}/members/{rows[target.id]}" for target in (users["other"], owner)]
        tokens = [token_for(owner), token_for(users["other"])]
        responses = at_once(2, lambda i: requests.patch(urls[i], json={"role": "labeler"}, headers=tokens[i], timeout=60))
        codes = sorted(statuses(responses))
        # The second one is refused: either as the last team admin (409) or, having been demoted, as no longer a team admin (403).
        assert codes in ([200, 403], [200, 409]), [r.text for r in responses]
        fresh()
        admins = db.session.scalar(select(func.count()).select_from(WorkforceMember).where(
            WorkforceMember.workforce_id == workforce.id, WorkforceMember.role == WorkforceRole.team_admin))
        assert admins == 1


def test_two_managers_attaching_the_same_workforce_at_once_attach_it_once(app_ctx, live_server):
    owner = make_user()
    dataset = make_dataset(owner)
    headers = token_for(owner)
    for round_ in range(3):
        workforce = service.create_workforce(f"Team {round_}", by=owner)
        url, body = f"{live_server}/api/v1/datasets/{dataset.id}/workforces", {"workforce_id": workforce.id}
        responses = at_once(CLIENTS, lambda i: requests.post(url, json=body, headers=headers, timeout=60))
        assert sorted(statuses(responses)) == [201] + [409] * (CLIENTS - 1), [r.text for r in responses]
        fresh()
        assert db.session.scalar(select(func.count()).select_from(DatasetWorkforce).where(DatasetWorkforce.workforce_id == workforce.id)) == 1


def test_an_invite_form_without_its_csrf_token_is_refused_and_creates_nothing(app_ctx, live_server):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    _, token = service.create_invite(workforce, "labeler", by=owner)
    browser, _ = _signup_browser(live_server, token)
    response = browser.post(f"{live_server}/invites/{token}", data={"email": "csrf@example.com", "display_name": "C", "password": "long enough"},
                            allow_redirects=False, timeout=60)
    assert response.status_code == 400 and "reload the page" in response.text
    fresh()
    assert User.by_email("csrf@example.com") is None
