"""Helpers the API tests share: multipart uploads, and a check that earlier data survived."""

import io

from tests.factories import image_bytes


def post_files(client, dataset_id: int, headers: dict, files: list[tuple[bytes, str]], **form):
    """POST /images with every file in the multipart field `files`."""
    data = {"files": [(io.BytesIO(content), name) for content, name in files], **form}
    return client.post(f"/api/v1/datasets/{dataset_id}/images", data=data, headers=headers, content_type="multipart/form-data")


def jpegs(count: int, start: int = 10) -> list[tuple[bytes, str]]:
    return [(image_bytes(seed=start + i), f"photo-{start + i}.jpg") for i in range(count)]


def assert_intact(client, world, headers: dict) -> None:
    """The world's dataset still lists its two images and serves their original bytes."""
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images", headers=headers).get_json()
    by_name = {item["file_name"]: item for item in listing["items"]}
    assert listing["total"] == 2 and set(by_name) == set(world.originals), listing
    for name, content in world.originals.items():
        assert client.get(by_name[name]["file_url"], headers=headers).data == content
    dataset = client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()
    assert dataset["image_count"] == 2 and dataset["name"] == "Private cats"
