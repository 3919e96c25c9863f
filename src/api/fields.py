"""What a field of a request may hold: one set of annotated types for every body,
path and query parameter, so that each says the same thing in `/openapi.json`
and is checked the same way.

- Text (`Text`, `Name`, `Phone`, `Note`) refuses the C0 control characters but
  tab, line feed and carriage return (NUL included), is trimmed, and is
  non-blank unless it is a `Note`. The schema's `pattern` says exactly this.
- Ids of people (`StaffId`: staff, technicians, owners, actors) follow one
  pattern, `ID_PATTERN` of the domain.
- Numbers, flags and instants are strict: `"5"` is not 5, `1` is not `true`,
  `12345` is not an instant. Instants are ISO 8601 strings with an offset.
- Query parameters get the same strictness from their own types (`QueryFlag`,
  `QueryInstant`, `QueryDate`, `Position`, `DayOrInstant`, `PeriodName`).

A new command body gets these rules by using these types for its fields.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fieldledger.domain.facts import CONTROL_CHARACTERS, ID_PATTERN
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

#: Python's `str.strip()` whitespace beyond C0 and the space: trimmed away, so a
#: text of these alone is blank.
_UNICODE_SPACES = r"\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
_ALLOWED = r"[^\x00-\x08\x0B\x0C\x0E-\x1F]"
#: No forbidden control character, and at least one character that is not blank.
TEXT_PATTERN = rf"^{_ALLOWED}*[^\x00-\x20{_UNICODE_SPACES}]{_ALLOWED}*$"
#: No forbidden control character (may be empty or blank: trimmed to "").
NOTE_PATTERN = rf"^{_ALLOWED}*$"


def refuse_control_characters(value: Any) -> Any:
    if isinstance(value, str):
        found = CONTROL_CHARACTERS.search(value)
        if found is not None:
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters (found U+{code}); tab, line feed "
                "and carriage return are allowed",
                {"code": f"{ord(found.group()):04X}"},
            )
    return value


def _refuse_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def text(max_length: int, *, blank: bool = False) -> Any:
    """A trimmed text of at most `max_length` characters (counted as sent)."""
    checks: list[Any] = [BeforeValidator(refuse_control_characters)]
    if not blank:
        checks.append(BeforeValidator(_refuse_blank))
    limits = Field(
        min_length=0 if blank else 1,
        max_length=max_length,
        pattern=NOTE_PATTERN if blank else TEXT_PATTERN,
    )
    # Constraints next to the type (so that /openapi.json shows them), the
    # friendlier checks around them (so that they answer first), trimming last.
    return Annotated[(str, Strict(), limits, *reversed(checks), AfterValidator(str.strip))]


#: Free text: descriptions, reasons, summaries (trimmed, non-blank, 1-4000).
Text = text(4000)
#: A short name: customer names, service types, categories (trimmed, non-blank, 1-200).
Name = text(200)
#: A telephone number as the customer gives it (trimmed, non-blank, 1-50).
Phone = text(50)
#: An optional comment: may be empty (trimmed, at most 4000).
Note = text(4000, blank=True)


def _id(value: Any) -> Any:
    value = refuse_control_characters(value)
    if isinstance(value, str) and re.fullmatch(ID_PATTERN, value) is None:
        raise PydanticCustomError(
            "staff_id",
            "must be an id of 1 to 100 characters: letters A-Z a-z, digits, '.', '_', "
            "'@' or '-', starting with a letter or digit",
        )
    return value


#: The id of a person: staff member, technician, owner, actor (`ID_PATTERN`).
StaffId = Annotated[str, Strict(), Field(pattern=ID_PATTERN), BeforeValidator(_id)]

#: Whole numbers and flags: no coercion from strings, floats or booleans.
Int = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]


def _instant_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _ISO_INSTANT.match(value) is None:
        raise PydanticCustomError(
            "instant",
            "must be an ISO 8601 date-time with an offset, e.g. 2026-11-03T09:30:00+08:00",
        )
    return value


def _in_range(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError("instant", "lies outside the years 0001-9999 in UTC") from None
    return value


_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")

#: An instant: an ISO 8601 string with an offset (a number is not an instant).
Instant = Annotated[AwareDatetime, BeforeValidator(_instant_text), AfterValidator(_in_range)]


def _money(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError("number", "must be a JSON number")
    return value


def money(maximum: int, *, minimum: int | None = 0) -> Any:
    """An amount with at most two decimal places, sent as a JSON number."""
    schema: dict[str, Any] = {"type": "number", "maximum": maximum, "multipleOf": 0.01}
    if minimum is not None:
        schema["minimum"] = minimum
    return Annotated[
        Decimal,
        Field(ge=minimum, le=maximum, decimal_places=2, allow_inf_nan=False),
        BeforeValidator(_money),
        WithJsonSchema(schema),
    ]


#: The id of a record (work order, complaint) in a path: a UUID. A malformed one
#: names no record (404), but a control character in it is refused (422).
RecordId = Annotated[UUID, BeforeValidator(refuse_control_characters)]


# -- query parameters ----------------------------------------------------------


def _flag_text(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise PydanticCustomError("flag", "must be true or false")
        return value == "true"
    return value


#: `true` or `false`, nothing else (not `yes`, `1`, `on`).
QueryFlag = Annotated[bool, BeforeValidator(_flag_text)]
#: An instant in a query: as `Instant`.
QueryInstant = Instant


def _date_text(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        raise PydanticCustomError("date", "must be a date YYYY-MM-DD")
    return value


#: A calendar date, YYYY-MM-DD (a number is not a date).
QueryDate = Annotated[date, BeforeValidator(_date_text)]


def _digits(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value) is None:
        raise PydanticCustomError("whole_number", "must be a whole number 0 or more, in digits")
    return value


#: A store position or a count in a query: digits only.
Position = Annotated[int, Field(ge=0, le=10**18 - 1), BeforeValidator(_digits)]


def count(low: int, high: int) -> Any:
    """A whole number from `low` to `high` in a query: digits only."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_digits)]


def _day_or_instant(value: Any) -> Any:
    value = refuse_control_characters(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        _instant_text(value)
    return value


#: A date (a whole local day) or an ISO 8601 instant with an offset.
DayOrInstant = Annotated[
    str,
    BeforeValidator(_day_or_instant),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"},
                              {"type": "string", "format": "date-time"}]}),
]  # fmt: skip

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$"
#: A month `YYYY-MM` or a quarter `YYYY-Qn`.
PeriodName = Annotated[str, Strict(), Field(pattern=PERIOD_PATTERN)]


def plain_text(max_length: int) -> Any:
    """A query's free text (a cursor, a list of names): no control characters."""
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, pattern=TEXT_PATTERN),
        BeforeValidator(refuse_control_characters),
    ]
