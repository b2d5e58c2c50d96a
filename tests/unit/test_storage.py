"""core/storage.py: key layout on disk, nested derived keys, deleting by prefix."""

import io

import pytest

from core.storage import LocalStorage

SHA_A, SHA_B = "a" * 64, "ab" + "c" * 62


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "store")


def test_objects_and_derived_keys_keep_their_place_on_disk(storage):
    stored = storage.put_stream(io.BytesIO(b"original bytes"))
    assert (storage.root / "objects" / stored.key[:2] / stored.key[2:4] / stored.key).read_bytes() == b"original bytes"
    storage.put_bytes(f"thumbs/{SHA_A}.jpg", b"thumb")
    assert (storage.root / "thumbs" / "aa" / f"{SHA_A}.jpg").read_bytes() == b"thumb"


def test_nested_keys_round_trip(storage):
    key = f"regions/{SHA_A}/0-0-10-10-10x10.jpg"
    assert not storage.exists(key)
    storage.put_bytes(key, b"tile")
    assert storage.exists(key) and storage.read(key) == b"tile"
    with storage.open(key) as stream:
        assert stream.read() == b"tile"
    storage.delete(key)
    assert not storage.exists(key)


def test_delete_prefix_removes_only_the_objects_under_it(storage):
    doomed = [f"regions/{SHA_A}/0-0-10-10-10x10.jpg", f"regions/{SHA_A}/5-5-20-20-10x10.jpg"]
    kept = [f"regions/{SHA_B}/0-0-10-10-10x10.jpg", f"thumbs/{SHA_A}.jpg", f"previews/{SHA_A}-2048.jpg"]
    for key in doomed + kept:
        storage.put_bytes(key, b"x")
    storage.delete_prefix(f"regions/{SHA_A}/")
    assert not any(storage.exists(key) for key in doomed)
    assert all(storage.exists(key) for key in kept)
    storage.delete_prefix(f"regions/{SHA_A}/")  # nothing left: not an error
    storage.put_bytes(doomed[0], b"again")  # the folder comes back on the next write
    assert storage.read(doomed[0]) == b"again"


@pytest.mark.parametrize("prefix", ["regions", "regions/", f"regions/{SHA_A}", "/", f"regions/../{SHA_A}/", f"regions//{SHA_A}/"])
def test_delete_prefix_refuses_anything_but_a_folder_inside_a_namespace(storage, prefix):
    storage.put_bytes(f"regions/{SHA_A}/0-0-1-1-1x1.jpg", b"x")
    with pytest.raises(ValueError):
        storage.delete_prefix(prefix)
    assert storage.exists(f"regions/{SHA_A}/0-0-1-1-1x1.jpg")


@pytest.mark.parametrize("key", [
    "regions/../x", f"regions/{SHA_A}/..", f"regions/{SHA_A}//x", "/x", "regions/", "not-a-sha",
    f"objects/{SHA_A[:2]}/{SHA_A}", f"tmp/{SHA_A}", f"exports/{SHA_A}/../x.zip", f"uploads/{SHA_A}.zip",
])
def test_keys_cannot_escape_or_be_empty(storage, key):
    with pytest.raises(ValueError):
        storage.put_bytes(key, b"x")


def test_put_file_moves_a_finished_file_under_its_key(storage, tmp_path):
    finished = tmp_path / "export.part"
    finished.write_bytes(b"all of it")
    assert storage.put_file("exports/7/cats.json", finished) == 9
    assert storage.read("exports/7/cats.json") == b"all of it"
    assert not finished.exists()
    storage.delete_prefix("exports/7/")
    assert not storage.exists("exports/7/cats.json")
