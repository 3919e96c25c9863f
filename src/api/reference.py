"""docs/reference.md, written from /openapi.json: every endpoint with its
parameters, body and answers, every body's fields, every problem type.

    python -m fieldledger.api.reference > docs/reference.md

`tests/e2e/test_documentation.py` checks that the file in the repository is
what this writes, so the reference cannot drift from the service.
"""

from __future__ import annotations

import sys
from typing import Any

from fieldledger.api.problems import PROBLEM_TYPES
from fieldledger.application.fields import (
    MONTH_PATTERN,
    NOTE_PATTERN,
    PERIOD_PATTERN,
    TEXT_PATTERN,
    WEEK_PATTERN,
)
from fieldledger.domain.facts import ID_PATTERN

PATTERNS = {
    TEXT_PATTERN: "text",
    NOTE_PATTERN: "text, may be empty",
    ID_PATTERN: "id",
    PERIOD_PATTERN: "period `YYYY-MM` or `YYYY-Qn`",
    WEEK_PATTERN: "ISO week `YYYY-Www`",
    MONTH_PATTERN: "month `YYYY-MM`",
}
HEADER = """\
# API reference

Every endpoint, parameter, body field, answer and problem type of the HTTP
API, written from the service's own OpenAPI document (`GET /openapi.json`) by
`python -m fieldledger.api.reference > docs/reference.md`; a test checks that
this page is current. Why the API is as it is, and its conventions (tokens,
roles, `If-Match`, `Idempotency-Key`, `occurred_at`, `X-Position`, hostile
input), are in [api.md](api.md).

## Kinds of values

| kind | what is accepted |
| --- | --- |
| text | a JSON string without the C0 control characters (U+0000-U+001F) other than tab, line feed and carriage return; trimmed of leading and trailing whitespace, and not blank; at most the length shown, counted as sent |
| text, may be empty | as text, but may be empty or blank (stored trimmed, so as `""`) |
| id | the id of a person (staff member, technician, owner, actor): 1 to 100 of `A-Z a-z 0-9 . _ @ -`, starting with a letter or digit, e.g. `tech-1` |
| instant | an ISO 8601 / RFC 3339 date-time string with an offset: `2026-11-03T09:30:00+08:00`, `2026-11-03T01:30:00Z`. A time without offset, a number or a date alone is refused. Answers give instants in UTC |
| date | `YYYY-MM-DD`, a day in FIELDLEDGER_TIMEZONE |
| integer | a JSON number without a fraction (`5`, also `5.0`); never a string (`"5"`) or a boolean |
| boolean | `true` or `false`; never `1`, `"yes"` or `"true"` in a body. In a query: `true` or `false` only |
| number | a JSON number (money: at most two decimals); never a string |
| uuid | a record's id as given in `Location` and `id`, e.g. `0b6a1c9e-5f8e-4a53-9f2a-2f2b8a4f1d0e` |

A body is JSON (`Content-Type: application/json`), at most 64 KiB, nested at
most 32 levels; unknown fields are refused.
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        text = " or ".join(_type(o) for o in options)
        return text + (" or null" if len(options) < len(schema["anyOf"]) else "")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if kind == "array":
        text = "list of " + _type(schema.get("items", {}))
        bounds = _bounds(schema, "minItems", "maxItems", "items")
        return f"{text} ({bounds})" if bounds else text
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "instant"
        if fmt in ("date", "uuid"):
            return str(fmt)
        name = PATTERNS.get(schema.get("pattern", ""), "")
        if not name and "pattern" in schema:
            name = f"string matching `{schema['pattern']}`"
        bounds = _bounds(schema, "minLength", "maxLength", "characters")
        name = name or "string"
        return f"{name} ({bounds})" if bounds else name
    if kind in ("integer", "number"):
        parts = []
        if "minimum" in schema:
            parts.append(f"≥ {_num(schema['minimum'])}")
        if "maximum" in schema:
            parts.append(f"≤ {_num(schema['maximum'])}")
        if schema.get("multipleOf") == 0.01:
            parts.append("2 decimals")
        return f"{kind} ({', '.join(parts)})" if parts else str(kind)
    return str(kind or "any")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounds(schema: dict[str, Any], low: str, high: str, unit: str) -> str:
    if low in schema and high in schema:
        return f"{schema[low]}-{schema[high]} {unit}"
    if high in schema:
        return f"at most {schema[high]} {unit}"
    if schema.get(low):
        return f"at least {schema[low]} {unit}"
    return ""


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = ["| field | type | required | default, meaning |", "| --- | --- | --- | --- |"]
    for name, field in schema.get("properties", {}).items():
        notes = []
        if "default" in field:
            notes.append(f"default `{_json(field['default'])}`")
        if field.get("description"):
            notes.append(field["description"])
        lines.append(f"| `{name}` | {_cell(_type(field))} | {'yes' if name in required else 'no'}"
                     f" | {_cell('; '.join(notes))} |")  # fmt: skip
    return lines


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, str) else value


def reference(spec: dict[str, Any]) -> str:
    out = [HEADER, "## Endpoints", ""]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            out.append(f"### `{method.upper()} {path}`")
            out.append("")
            out.append(_cell(op.get("description") or op.get("summary", "")))
            out.append("")
            if not op.get("security"):
                out += ["No token needed.", ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | type | required | meaning |",
                        "| --- | --- | --- | --- | --- |"]  # fmt: skip
                for p in params:
                    out.append(f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))}"
                               f" | {'yes' if p.get('required') else 'no'}"
                               f" | {_cell(p.get('description', ''))} |")  # fmt: skip
                out.append("")
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                needed = "required" if body.get("required") else "optional (may be left out)"
                out += [f"Body ({needed}): {_type(schema)}", ""]
            answers = ", ".join(
                f"{status} {_cell(answer.get('description', ''))}"
                for status, answer in op.get("responses", {}).items()
            )
            out += [f"Answers: {answers}.", ""]
    out += ["## Bodies and answers", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [_cell(schema["description"]), ""]
        if "properties" in schema:
            out += [*_fields(schema), ""]
        else:
            out += [f"{_type(schema)}", ""]
    out += ["## Problem types", "",
            "Every error is `application/problem+json` (RFC 9457) with `type`, `title`, "
            "`status`, `detail`; `GET /problems/{slug}` explains each type.", "",
            "| type | status | meaning |", "| --- | --- | --- |"]  # fmt: skip
    for slug, kind in PROBLEM_TYPES.items():
        out.append(f"| `/problems/{slug}` | {kind.status} | {_cell(kind.description)} |")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    from fieldledger.api.app import create_app

    sys.stdout.write(reference(create_app().openapi()))


if __name__ == "__main__":
    main()
