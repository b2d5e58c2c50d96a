"""A 12000x9000 JPEG on the canvas: the page loads the preview, then a sharp region as the user zooms in."""

import io

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter, ImageStat

from core.extensions import db
from core.storage import get_storage
from models import Image
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser

W, H = 12000, 9000


def large_jpeg() -> bytes:
    """A gradient under 2 px black lines every 6 px: a blur turns them grey, so sharpness is measurable."""
    ramp = PILImage.linear_gradient("L")
    picture = PILImage.merge(
        "RGB", (ramp.resize((W, H)), ramp.transpose(PILImage.Transpose.ROTATE_90).resize((W, H)), PILImage.new("L", (W, H), 128))
    )
    draw = ImageDraw.Draw(picture)
    for x in range(0, W, 6):
        draw.line([(x, 0), (x, H)], fill=(0, 0, 0), width=2)
    for y in range(0, H, 48):
        draw.line([(0, y), (W, y)], fill=(255, 255, 255), width=2)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=70)
    return out.getvalue()


def sharpness(picture: PILImage.Image) -> float:
    """The spread of the edge filter's response: high for crisp lines, low for a grey blur."""
    return ImageStat.Stat(picture.convert("L").filter(ImageFilter.FIND_EDGES)).stddev[0]


def test_large_image_loads_the_preview_then_a_sharp_region_when_zoomed(page):
    user = make_user()
    dataset = make_dataset(user, name="Aerial", type="detection")
    stored = get_storage().put_stream(io.BytesIO(large_jpeg()))
    image = Image(dataset_id=dataset.id, file_name="aerial.jpg", storage_key=stored.key, width=W, height=H, byte_size=stored.size, format="jpeg")
    db.session.add(image)
    db.session.commit()
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, user)

    base = f"/datasets/{dataset.id}/images/{image.id}"
    with page.expect_response(lambda r: r.url.endswith(base + "/preview")) as preview_response:
        page.goto(base + "/label")
    assert preview_response.value.status == 200
    assert page.locator("#lb-image").get_attribute("href") == base + "/preview"
    assert not any("/file" in url for url in requests), requests  # 27 MB never sent to the page
    assert page.evaluate("() => window.loupeLabeling.region") is None
    fitted = page.evaluate("() => window.loupeLabeling.view")["s"]

    # Zoom in with the wheel at the centre of the canvas until the preview (2048 px wide) is too blurry.
    box = page.locator("#lb-svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    with page.expect_response(lambda r: "/region?" in r.url) as region_response:
        for _ in range(4):
            page.mouse.wheel(0, -250)
            page.wait_for_timeout(30)
    assert region_response.value.status == 200
    page.wait_for_function("() => window.loupeLabeling.region !== null")
    view = page.evaluate("() => window.loupeLabeling.view")
    assert view["s"] > 3 * fitted
    region = page.evaluate("() => window.loupeLabeling.region")
    node = page.locator("#lb-region")
    assert node.get_attribute("href") == region["url"] and node.get_attribute("visibility") == "visible"
    # Drawn at its place in image pixels, covering the view.
    assert [float(node.get_attribute(k)) for k in ("x", "y", "width", "height")] == [region[k] for k in ("x", "y", "width", "height")]
    visible_x = -view["tx"] / view["s"]
    visible_w = box["width"] / view["s"]
    assert region["x"] <= visible_x and region["x"] + region["width"] >= visible_x + visible_w - 1
    # Sharp: far more pixels per image pixel than the preview has there, and crisp lines.
    preview_scale = 2048 / W
    assert region["naturalWidth"] >= 2.5 * region["width"] * preview_scale
    assert region["naturalWidth"] == round(region["width"] * region["scale"])
    tile = PILImage.open(io.BytesIO(page.request.get(region["url"]).body()))
    preview = PILImage.open(io.BytesIO(page.request.get(base + "/preview").body()))
    ps = preview.width / W
    blurry = preview.crop(
        (round(region["x"] * ps), round(region["y"] * ps), round((region["x"] + region["width"]) * ps), round((region["y"] + region["height"]) * ps))
    ).resize(tile.size, PILImage.Resampling.BILINEAR)
    assert sharpness(tile) > 2 * sharpness(blurry), (sharpness(tile), sharpness(blurry))

    # Zooming back out drops the region: the preview is enough again.
    page.locator("#lb-fit").click()
    page.wait_for_function("() => window.loupeLabeling.region === null")
    assert page.locator("#lb-region").get_attribute("visibility") == "hidden"
    assert not any("/file" in url for url in requests)
    assert not errors, errors
