"""Every table of a test's database as text (`sqlite3 .dump`, `pg_dump`), and
the forms personal data could take in it: for checking that it holds none."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit


def dump_database(database_url: str) -> str:
    """The whole database as SQL text: SQLite's `.dump` or PostgreSQL's `pg_dump`
    of the test's schema (events, hash chain, receipts, keys, read models, tokens)."""
    if database_url.startswith("sqlite:///"):
        path = database_url[len("sqlite:///") :]
        sqlite3 = shutil.which("sqlite3")
        assert sqlite3 is not None, "the sqlite3 command line is needed for .dump"
        out = subprocess.run([sqlite3, path, ".dump"], capture_output=True, check=True)
        return out.stdout.decode("utf-8", "replace")
    parts = urlsplit(database_url)
    schema = parse_qs(parts.query)["schema"][0]
    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, "pg_dump is needed"
    out = subprocess.run(
        [pg_dump, "--no-owner", "--schema", schema, parts._replace(query="").geturl()],
        capture_output=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    text = out.stdout.decode("utf-8", "replace")
    assert "CREATE TABLE" in text and "COPY " in text
    return text


def clear_forms(value: str) -> list[str]:
    """`value` as it would show in a dump if stored in clear: as text, as the hex
    of its UTF-8 (a BLOB or bytea column), JSON-escaped, base64."""
    raw = value.encode()
    forms = [value, raw.hex(), raw.hex().upper(), json.dumps(value)[1:-1]]
    encoded = base64.b64encode(raw).decode().rstrip("=")
    if len(encoded) > 4:
        forms.append(encoded[:-1])  # the last character depends on what follows
    return forms


def found_in(text: str, values: list[str]) -> list[str]:
    return [f"{v!r} as {form!r}" for v in values for form in clear_forms(v) if form in text]
