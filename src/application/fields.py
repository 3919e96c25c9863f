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


# Each text type: the constraints next to the type (so that /openapi.json shows
# them), the friendlier checks around them (so that they answer first: the last
# BeforeValidator runs first), trimming last. Lengths count the text as sent.
_NO_CONTROLS = BeforeValidator(refuse_control_characters)
_NOT_BLANK = BeforeValidator(_refuse_blank)
_TRIM = AfterValidator(str.strip)

#: Free text: descriptions, reasons, summaries (trimmed, non-blank, 1-4000).
Text = Annotated[
    str, Strict(), Field(min_length=1, max_length=4000, pattern=TEXT_PATTERN),
    _NOT_BLANK, _NO_CONTROLS, _TRIM,
]  # fmt: skip
#: A short name: customer names, service types, categories (trimmed, non-blank, 1-200).
Name = Annotated[
    str, Strict(), Field(min_length=1, max_length=200, pattern=TEXT_PATTERN),
    _NOT_BLANK, _NO_CONTROLS, _TRIM,
]  # fmt: skip
#: A short code, e.g. a conduct kind (trimmed, non-blank, 1-50).
Code = Annotated[
    str, Strict(), Field(min_length=1, max_length=50, pattern=TEXT_PATTERN),
    _NOT_BLANK, _NO_CONTROLS, _TRIM,
]  # fmt: skip
#: A telephone number as the customer gives it (trimmed, non-blank, 1-50).
Phone = Code
#: An optional comment: may be empty (trimmed, at most 4000).
Note = Annotated[
    str, Strict(), Field(max_length=4000, pattern=NOTE_PATTERN), _NO_CONTROLS, _TRIM
]


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

def _integral(value: Any) -> Any:
    # JSON has one kind of number: 5.0 is the integer 5 (as JSON Schema says); 5.5 is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_WHOLE = BeforeValidator(_integral)
#: Whole numbers and flags: no coercion from strings or booleans (5.0 is 5).
#: Bounded ones carry their bounds next to the type, so /openapi.json shows them.
Int = Annotated[int, Strict(), _WHOLE]
#: A customer satisfaction score, 1 to 5.
Csat = Annotated[int, Strict(), Field(ge=1, le=5), _WHOLE]
#: A survey dimension (attitude, skill, punctuality, promise), 1 to 4.
Score4 = Annotated[int, Strict(), Field(ge=1, le=4), _WHOLE]
#: An escalation level, 1 to 3.
Level = Annotated[int, Strict(), Field(ge=1, le=3), _WHOLE]
#: A quantity of parts, 1 to 1,000,000.
Quantity = Annotated[int, Strict(), Field(ge=1, le=1_000_000), _WHOLE]
#: Maintenance visits a year under a contract, 1 to 366 (one a day at most).
VisitsPerYear = Annotated[int, Strict(), Field(ge=1, le=366), _WHOLE]
Flag = Annotated[bool, Strict()]
#: Minutes late for a shift: 0 to a day (1440); more is absurd.
Minutes = Annotated[int, Strict(), Field(ge=0, le=24 * 60), _WHOLE]


def _day_text(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        raise PydanticCustomError("date", "must be a date YYYY-MM-DD")
    return value


#: A calendar day in a body, YYYY-MM-DD (a number is not a day).
Day = Annotated[date, BeforeValidator(_day_text)]


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


_MONEY = BeforeValidator(_money)
#: A price: 0 to 9,999,999,999.99, at most two decimal places, a JSON number.
Price = Annotated[
    Decimal, Field(ge=0, le=9_999_999_999, decimal_places=2, allow_inf_nan=False), _MONEY,
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 9_999_999_999,
                    "multipleOf": 0.01}),
]  # fmt: skip
#: Appraisal points: -9999 to 9999, at most two decimal places, a JSON number.
Points = Annotated[
    Decimal, Field(ge=-9999, le=9999, decimal_places=2, allow_inf_nan=False), _MONEY,
    WithJsonSchema({"type": "number", "minimum": -9999, "maximum": 9999, "multipleOf": 0.01}),
]  # fmt: skip


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


#: A page size in a query: 1 to 500, digits only.
PageSize = Annotated[int, Field(ge=1, le=500), BeforeValidator(_digits)]


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

WEEK_PATTERN = r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$"
#: An ISO 8601 week `YYYY-Www`.
WeekName = Annotated[str, Strict(), Field(pattern=WEEK_PATTERN)]
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
#: A month `YYYY-MM` (no quarter).
MonthName = Annotated[str, Strict(), Field(pattern=MONTH_PATTERN)]

#: A query's list of names, comma-separated (event types, statuses).
NameList = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN), _NO_CONTROLS
]
#: A cursor this service gave out.
Cursor = Annotated[str, Field(min_length=1, max_length=500, pattern=TEXT_PATTERN), _NO_CONTROLS]
