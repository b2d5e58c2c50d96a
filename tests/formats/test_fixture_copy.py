"""The third-party fixtures are byte for byte what their README counted (CRLF line endings
included: git must not normalise them), so the counts the import tests assert are theirs."""

import hashlib

from tests.support import FORMAT_FIXTURES


def test_every_fixture_file_matches_its_checksum():
    listed = [line.split(maxsplit=1) for line in (FORMAT_FIXTURES / "SHA256SUMS").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(listed) == 125  # the README's count of data files
    for digest, name in listed:
        path = FORMAT_FIXTURES / name.lstrip("*").removeprefix("./")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
