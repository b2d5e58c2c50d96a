"""Start an export through the API, run its job with the real worker, and read the file."""

import csv
import io
import json


def start(client, world, **options):
    return client.post(f"/api/v1/datasets/{world.dataset.id}/exports", json=options, headers=world.headers)


def export_file(client, world, run_jobs, **options) -> tuple[dict, bytes]:
    """The finished export's JSON and its downloaded bytes; fails with the job's message otherwise."""
    response = start(client, world, **options)
    assert response.status_code == 202, response.get_json()
    run_jobs()
    export = client.get(f"/api/v1/exports/{response.get_json()['id']}", headers=world.headers).get_json()
    assert export["status"] == "ready", export["job"]
    download = client.get(export["download_url"], headers=world.headers)
    assert download.status_code == 200
    return export, download.data


def json_images(data: bytes) -> dict[str, dict]:
    document = json.loads(data)
    return {image["file_name"]: image for image in document["images"]}


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
