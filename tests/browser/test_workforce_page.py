"""Workforces in a real browser: an owner builds a team, adds a member by email and makes an invite
link; a stranger signs up through it and lands as a member; once the team is attached to a dataset,
the new member sees that dataset."""

import pytest

from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser


def test_an_owner_builds_a_team_and_a_stranger_joins_it_through_an_invite_link(page, browser, live_server):
    owner = make_user("owner@example.com", name="Olga")
    make_dataset(owner, name="Harbour cranes")
    make_user("bob@example.com", name="Bob")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)

    page.click("header nav >> text=Workforces")
    page.fill("#create-workforce input[name=name]", "Night shift")
    page.click("#create-workforce button")
    page.wait_for_url("**/workforces/*")
    assert page.locator("#workforce-name").inner_text() == "Night shift"
    assert page.locator("#workforce-members tr[data-member='owner@example.com']").inner_text().count("team_admin") == 1
    workforce_url = page.url

    page.fill("#add-workforce-member input[name=email]", "bob@example.com")
    page.select_option("#add-workforce-member select[name=role]", "reviewer")
    page.click("#add-workforce-member button")
    page.locator("#workforce-members tr[data-member='bob@example.com']").wait_for()

    page.select_option("#invite-form select[name=role]", "labeler")
    page.click("#invite-form button")
    link = page.locator("#invite-url")
    link.wait_for()
    invite_url = link.inner_text().strip()
    assert "/invites/" in invite_url
    page.click("#copy-invite")
    page.wait_for_function("document.querySelector('#copy-invite').textContent !== 'Copy'")

    stranger = browser.new_context(base_url=live_server)
    try:
        joiner = stranger.new_page()
        joiner.set_default_timeout(15000)
        joiner.on("pageerror", lambda exc: errors.append(str(exc)))
        joiner.goto(invite_url)
        assert "Join Night shift" in joiner.locator("h1").inner_text()
        joiner.get_by_label("Email").fill("nia@example.com")
        joiner.get_by_label("Your name").fill("Nia")
        joiner.get_by_label("Password").fill("a long password")
        joiner.click("#signup-form button")
        joiner.wait_for_url(workforce_url)
        assert joiner.locator("header .me").inner_text().startswith("Nia")
        row = joiner.locator("#workforce-members tr[data-member='nia@example.com']")
        assert "labeler" in row.inner_text()
        joiner.goto("/datasets/")
        assert "Harbour cranes" not in joiner.locator("main").inner_text()

        # The owner attaches the team to the dataset on its overview.
        page.goto("/datasets/")
        page.click("text=Harbour cranes")
        page.click("nav.tabs >> text=Overview")
        page.select_option("#attach-workforce select[name=workforce_id]", label="Night shift")
        page.click("#attach-workforce button")
        page.locator("#dataset-workforces tr[data-workforce='Night shift']").wait_for()

        joiner.reload()
        assert "Harbour cranes" in joiner.locator("main").inner_text()

        # The used link says so, in a fresh browser.
        late = stranger.browser.new_context(base_url=live_server).new_page()
        response = late.goto(invite_url)
        assert response.status == 410 and "already been used" in late.locator("main").inner_text()
        late.context.close()
    finally:
        stranger.close()
    assert errors == []
