"""Preview and region of large images: the canvas's session routes and the token API route."""

import io
import json
import re

import pytest
from PIL import Image as PILImage

from core.extensions import db
from core.storage import get_storage
from models import Image
from services import images as image_service
from services import regions
from tests.factories import make_dataset, token_for

JSON = {"Accept": "application/json"}


def add_image(dataset, size=(3000, 2000), fmt="JPEG") -> Image:
    """An image row whose bytes are in storage: left half red, right half blue."""
    picture = PILImage.new("RGB", size, (220, 30, 30))
    picture.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    picture.save(out, fmt, quality=80)
    stored = get_storage().put_stream(io.BytesIO(out.getvalue()))
    image = Image(
        dataset_id=dataset.id, file_name="big.jpg", storage_key=stored.key, width=size[0], height=size[1],
        byte_size=stored.size, format=fmt.lower(),
    )
    db.session.add(image)
    db.session.commit()
    return image


@pytest.fixture
def scene(client, owner):
    dataset = make_dataset(owner, name="Aerial")
    return dataset, add_image(dataset)


def base(dataset, image) -> str:
    return f"/datasets/{dataset.id}/images/{image.id}"


def jpeg(response) -> PILImage.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/jpeg"
    return PILImage.open(io.BytesIO(response.get_data()))


def test_preview_is_the_whole_image_downscaled_cached_with_an_etag(client, scene):
    dataset, image = scene
    response = client.get(base(dataset, image) + "/preview")
    picture = jpeg(response)
    assert picture.size == (2048, 1365)
    assert picture.getpixel((100, 600))[0] > 180 and picture.getpixel((1900, 600))[2] > 180
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    etag = response.headers["ETag"]
    assert get_storage().exists(regions.preview_key(image))
    again = client.get(base(dataset, image) + "/preview", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_region_crops_in_image_pixels_and_downscales(client, scene):
    dataset, image = scene
    url = base(dataset, image) + "/region?x=1400&y=100&width=200&height=300&scale=0.5"
    response = client.get(url)
    picture = jpeg(response)
    assert picture.size == (100, 150)
    assert picture.getpixel((10, 75))[0] > 180  # x 1420: red
    assert picture.getpixel((90, 75))[2] > 180  # x 1580: blue
    assert response.headers["ETag"] and response.headers["Cache-Control"].startswith("private")
    assert client.get(url, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    assert client.get(url).get_data() == response.get_data()


@pytest.mark.parametrize(
    "query, words",
    [
        ("", "x is missing"),
        ("x=0&y=0&width=10&height=10", "scale is missing"),
        ("x=a&y=0&width=10&height=10&scale=1", "x must be a whole number"),
        ("x=0&y=0&width=0&height=10&scale=1", "at least 1 pixel"),
        ("x=2990&y=0&width=20&height=10&scale=1", "not inside"),
        ("x=0&y=0&width=10&height=10&scale=0", "greater than 0"),
        ("x=0&y=0&width=10&height=10&scale=nan", "greater than 0"),
        ("x=0&y=0&width=10&height=10&scale=2", "at most 1"),
        ("x=0&y=0&width=3000&height=2000&scale=1", "at most 2048x2048"),
    ],
)
def test_bad_region_parameters_are_422_with_a_message(client, scene, query, words):
    dataset, image = scene
    response = client.get(base(dataset, image) + "/region?" + query, headers=JSON)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and words in error["message"]


def test_labeling_page_hands_the_canvas_preview_and_region_urls(client, scene):
    dataset, image = scene
    html = client.get(base(dataset, image) + "/label").get_data(as_text=True)
    config = json.loads(re.search(r'<script id="labeling-config" type="application/json">(.*?)</script>', html, re.DOTALL).group(1))
    assert config["large"] is True  # 6 megapixels
    assert config["urls"]["preview"] == base(dataset, image) + "/preview"
    assert config["urls"]["region"] == base(dataset, image) + "/region"
    assert config["preview_side"] == 2048 and config["region_max"] == 2048
    small = add_image(dataset, size=(400, 300), fmt="PNG")
    html = client.get(base(dataset, small) + "/label").get_data(as_text=True)
    assert '"large": false' in html


def test_api_region_with_a_token(client, scene, owner):
    dataset, image = scene
    url = f"/api/v1/datasets/{dataset.id}/images/{image.id}/region"
    headers = token_for(owner)
    response = client.get(url + "?x=0&y=0&width=3000&height=2000&scale=0.25", headers=headers)
    assert jpeg(response).size == (750, 500)
    assert client.get(url + "?x=0&y=0&width=3000&height=2000&scale=0.25", headers={**headers, "If-None-Match": response.headers["ETag"]}).status_code == 304
    for query in ("x=0&y=0&width=10&height=10", "x=a&y=0&width=10&height=10&scale=1", "x=0&y=0&width=10&height=10&scale=nan",
                  "x=0&y=0&width=10&height=10&scale=1.5", "x=-1&y=0&width=10&height=10&scale=1", "x=0&y=0&width=3001&height=10&scale=1"):
        bad = client.get(url + "?" + query, headers=headers)
        assert bad.status_code == 422, query
        assert bad.get_json()["error"]["message"], query


def test_deleting_the_last_image_of_a_file_removes_its_cached_regions(client, scene, owner):
    dataset, image = scene
    other = make_dataset(owner, name="Other")
    twin = Image(
        dataset_id=other.id, file_name="same.jpg", storage_key=image.storage_key, width=image.width,
        height=image.height, byte_size=image.byte_size, format=image.format,
    )
    db.session.add(twin)
    db.session.commit()
    unique = add_image(dataset, size=(2000, 1500))
    storage = get_storage()
    tiles = {}
    for picture in (image, unique):
        for query in ("x=0&y=0&width=512&height=512&scale=1", "x=100&y=200&width=1024&height=1024&scale=0.5"):
            assert client.get(base(dataset, picture) + "/region?" + query).status_code == 200
        assert client.get(base(dataset, picture) + "/preview").status_code == 200
        tiles[picture.id] = [regions.region_key(picture, regions.validate(picture, 0, 0, 512, 512, 1)),
                             regions.region_key(picture, regions.validate(picture, 100, 200, 1024, 1024, 0.5))]
        assert all(storage.exists(key) for key in tiles[picture.id])
    shared_tiles, unique_tiles = tiles[image.id], tiles[unique.id]
    unique_key, shared_key = unique.storage_key, image.storage_key

    image_service.delete_images(dataset, [image.id, unique.id])

    # The twin in the other dataset still uses the shared file: its tiles and preview stay.
    assert storage.exists(shared_key) and all(storage.exists(key) for key in shared_tiles)
    assert storage.exists(regions.preview_key_for(shared_key))
    assert not storage.exists(unique_key) and not storage.exists(regions.preview_key_for(unique_key))
    assert not any(storage.exists(key) for key in unique_tiles)

    image_service.delete_images(other, [twin.id])
    assert not storage.exists(shared_key) and not any(storage.exists(key) for key in shared_tiles)
