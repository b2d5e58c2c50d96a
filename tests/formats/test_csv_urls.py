"""CSV of image URLs: one row per image, `url` first; through a live dataset the links download the
exact stored bytes without signing in."""

import csv
from urllib.parse import urlsplit

import pytest

from core.extensions import db
from formats import EXPORTS, csv_urls
from formats.base import ExportOptions
from models import Image
from services.export_source import LiveSource
from tests.factories import image_bytes, imported_image, make_dataset, make_user
from tests.formats.memory_source import MemorySource, box, labels, run_export


def read_rows(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_one_row_per_image_with_the_url_first(tmp_path):
    (cat,) = labels("cat")
    source = MemorySource(labels=(cat,))
    source.add("a.jpg", box(cat, 1, 1, 4, 4), size=(16, 12), split="train")
    source.add("b.png", size=(20, 10), split="test", folder="line-3", fmt="PNG")

    written, counted, path = run_export(csv_urls, source, tmp_path, full_path=True, url_expiry_s=3600)

    assert EXPORTS["csv_urls"] is csv_urls
    assert path.name == "Cats-urls.csv"
    assert path.read_bytes().startswith(b"url,file_name,split,width,height\r\n")
    keys = [image.storage_key for image in source.records]
    assert read_rows(path) == [
        {"url": f"https://loupe.test/originals/{keys[0]}?expires=3600", "file_name": "a.jpg", "split": "train", "width": "16", "height": "12"},
        {"url": f"https://loupe.test/originals/{keys[1]}?expires=3600", "file_name": "line-3/b.png", "split": "test", "width": "20", "height": "10"},
    ]
    assert written.images == counted.images == 2
    # The file lists images, not their annotations: the report says so rather than leaving them out silently.
    assert written.annotations == 0 and written.skipped == {"annotation: a CSV of URLs lists images only": 1}


def test_count_refuses_a_file_without_the_url_column_or_a_url(tmp_path):
    options = ExportOptions(format="csv_urls")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("file_name,url\r\na.jpg,x\r\n")
    with pytest.raises(ValueError, match="header"):
        csv_urls.count(wrong, options)
    empty = tmp_path / "empty.csv"
    empty.write_text("url,file_name,split,width,height\r\n,a.jpg,train,1,1\r\n")
    with pytest.raises(ValueError, match="no url"):
        csv_urls.count(empty, options)


def test_live_links_download_the_exact_bytes_without_signing_in(app_ctx, new_client, tmp_path, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "LOUPE_BASE_URL", "https://loupe.example.com")
    owner = make_user()
    dataset = make_dataset(owner, type="classification")
    originals = {"a.jpg": image_bytes((16, 12), seed=1), "b.png": image_bytes((16, 12), "PNG", seed=2)}
    for name, data in originals.items():
        imported_image(dataset, name, data, owner=owner)
    assert db.session.scalar(db.select(db.func.count()).select_from(Image).where(Image.dataset_id == dataset.id)) == 2

    source = LiveSource(dataset)
    options = ExportOptions(format="csv_urls", url_expiry_s=600)
    path = tmp_path / csv_urls.file_name(source, options)
    with open(path, "wb") as out:
        written = csv_urls.export(source, options, out, lambda done: None)

    rows = read_rows(path)
    assert csv_urls.count(path, options).differences(written) == []
    assert sorted(row["file_name"] for row in rows) == ["a.jpg", "b.png"]
    anonymous = new_client()  # no session, no token
    for row in rows:
        url = urlsplit(row["url"])
        assert (url.scheme, url.netloc) == ("https", "loupe.example.com") and url.path.startswith("/files/")
        response = anonymous.get(url.path)
        assert response.status_code == 200
        assert response.data == originals[row["file_name"]]
        assert response.mimetype == ("image/png" if row["file_name"].endswith(".png") else "image/jpeg")
        assert f'filename="{row["file_name"]}"' in response.headers["Content-Disposition"]
        assert row["width"] == "16" and row["height"] == "12" and row["split"] == "unassigned"
