"""The event store's JSON transcoder, with less work per event encoded.

`eventsourcing`'s `JSONTranscoder.encode` goes through `json.JSONEncoder.encode`,
which builds a new C encoder (and its `markers` dict, for the circular
reference check) for every event, and hands each value JSON has no type for
to `_encode_obj`. `LedgerTranscoder` makes the same bytes with one C encoder
made once, whose fallback finds a registered type's tagging function in one
dict lookup (built on first use from the registered transcodings, so a type
registered later is honoured). Decoding is the library's.

Two differences, neither reachable by an event: no circular-reference check
(an event's state is a tree of values; a cycle would end in `RecursionError`
instead of `ValueError`), and `float`s, `str`s and the separators are encoded
by the same C functions as before, so the bytes are the library's exactly
(`tests/integration/test_transcoder.py` compares them on every kind of event).
"""

from __future__ import annotations

import dataclasses
import json.encoder
from collections.abc import Callable
from enum import Enum
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding
from fieldledger.application.event_store import DateAsISO, EnumAsValue, ValueObjectAsDict

#: `json`'s C encoder factory (None on a Python built without `_json`).
_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def sorted_json(*, ensure_ascii: bool) -> Callable[[Any], str]:
    """`json.dumps(value, sort_keys=True, ensure_ascii=ensure_ascii)` for a
    value with no cycles (an event's plain data, a subject's, a sealing's
    fields), made once.

    `JSONEncoder.encode` makes the C encoder afresh at every call (with the
    table of objects seen, for cycles): the audit trail encodes every event
    and a booking seals its customer, so the C encoder is made here once and
    called directly, the text the same. Without it (a Python built without
    `_json`), `encode`."""
    encoder = json.JSONEncoder(sort_keys=True, ensure_ascii=ensure_ascii)
    if _make_encoder is None:  # pragma: no cover - CPython has it
        return encoder.encode
    encode = _make_encoder(
        None, encoder.default,
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring,
        None, encoder.key_separator, encoder.item_separator, True, False, True,
    )  # fmt: skip
    join = "".join

    def text(value: Any) -> str:
        return join(encode(value, 0))

    return text


def _tagger(transcoding: Transcoding) -> Callable[[Any], dict[str, Any]]:
    """What `JSONTranscoder._encode_obj` returns for a value of the transcoding's
    type; for the kinds every event holds, without calling `encode`."""
    name = transcoding.name
    kind = type(transcoding)
    if kind is ValueObjectAsDict:
        # Its `encode`, with the field names looked up once rather than per value.
        names = tuple(f.name for f in dataclasses.fields(transcoding.type))
        return lambda o: {"_type_": name, "_data_": {n: getattr(o, n) for n in names}}
    if kind is EnumAsValue:
        # Each member's tagged value, made once (members are singletons; the
        # encoder only reads what it is given).
        members: type[Enum] = transcoding.type
        tagged = {id(m): {"_type_": name, "_data_": m.value} for m in members}
        encode = transcoding.encode
        return lambda o: tagged.get(id(o)) or {"_type_": name, "_data_": encode(o)}
    if kind is DatetimeAsISO or kind is DateAsISO:
        return lambda o: {"_type_": name, "_data_": o.isoformat()}
    encode = transcoding.encode
    return lambda o: {"_type_": name, "_data_": encode(o)}


class LedgerTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self._taggers: dict[type[Any], Callable[[Any], dict[str, Any]]] = {}
        self._encode_c = (
            None
            if _make_encoder is None
            else _make_encoder(
                None,  # markers: no circular-reference check
                self._default,
                json.encoder.encode_basestring,  # ensure_ascii=False
                None,  # indent
                ":",  # key separator
                ",",  # item separator
                False,  # sort_keys
                False,  # skipkeys
                True,  # allow_nan
            )
        )

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._taggers.clear()  # a type may have been registered again

    def encode(self, obj: Any) -> bytes:
        if self._encode_c is None:  # pragma: no cover - CPython has _json
            return super().encode(obj)
        return "".join(self._encode_c(obj, 0)).encode("utf8")

    def _default(self, o: Any) -> dict[str, Any]:
        tag = self._taggers.get(type(o))
        if tag is None:
            transcoding = self.types.get(type(o))
            if transcoding is None:
                return self._encode_obj(o)  # raises TranscodingNotRegisteredError
            tag = self._taggers[type(o)] = _tagger(transcoding)
        return tag(o)
