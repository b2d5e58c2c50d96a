"""Every main page works on a phone: nothing is clipped at 420 px wide, and the top bar names the person once."""

import pytest

from core.extensions import db
from models import Label
from services import images as image_service
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser

WIDTHS = (420, 360)


def overflow(page) -> dict:
    """The page's width beyond the viewport, and the elements that stick out (to say which, on failure)."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const wide = [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > width + 1 && el.getClientRects().length)
            .filter((el) => !el.closest('.tiles .tile .name, [hidden]'))
            .slice(0, 5).map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
          return { scrollWidth: document.documentElement.scrollWidth, width, wide };
        }"""
    )


@pytest.fixture
def pages(page):
    owner = make_user(name="Nadia Narrowscreen-Longname", email="nadia.narrowscreen@example.com")
    dataset = make_dataset(owner, name="Street scenes from the north entrance camera", type="detection")
    ids = insert_images(dataset, 30)
    db.session.add_all(
        Label(dataset_id=dataset.id, name=name, color="#e6194b", default_shape="box", position=i, shortcut=str(i + 1))
        for i, name in enumerate(("car", "pedestrian", "bicycle with a very long label name"))
    )
    db.session.commit()
    image_service.add_tag_to_images(dataset, ids[:5], "night")
    sign_in(page, owner)
    base = f"/datasets/{dataset.id}"
    return owner, [
        "/datasets/", "/datasets/new", base, f"{base}/images/", f"{base}/labels/", f"{base}/upload/", f"{base}/settings",
        f"{base}/images/{ids[0]}", f"{base}/images/{ids[0]}/label", "/jobs/", "/profile/",
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_main_pages_are_not_clipped_on_a_narrow_screen(page, pages, width, tmp_path):
    _, urls = pages
    page.set_viewport_size({"width": width, "height": 800})
    clipped = {}
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        # Kept with the test's files for a person to look at when this test fails.
        page.screenshot(path=str(tmp_path / f"{width}-{url.strip('/').replace('/', '_')}.png"), full_page=True)
        measured = overflow(page)
        if measured["scrollWidth"] > width:
            clipped[url] = measured
    assert not clipped, "\n".join(f"{url}: {m}" for url, m in clipped.items())


def test_the_top_bar_names_the_signed_in_person_once(page, pages):
    owner, _ = pages
    for width in (1280, 420):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto("/datasets/")
        bar = page.locator(".topbar")
        assert bar.inner_text().count(owner.name) == 1, bar.inner_text()
        assert bar.inner_text().count(owner.email) == 0
        assert bar.get_by_role("link", name=owner.name).is_visible()
        assert bar.get_by_role("button", name="Sign out").is_visible()
