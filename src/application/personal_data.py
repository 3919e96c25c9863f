"""Customers' personal data: sealed in the events, erasable by destroying a key.

Crypto-shredding (docs/privacy.md): every value object that holds a person's
contact details (`PERSONAL_DATA_TYPES`: a work order's `Customer`, a
complaint's `Complainant`, ...) goes through one transcoding step on its way
into the event store, which encrypts all its fields with AES-256-GCM under
that customer's data key. The event keeps only the ciphertext, the key's id and
the customer's pseudonymous id (a keyed hash of the phone number). Data keys
live in their own table, each wrapped (AES-GCM) under the master key, which
lives outside the database (FIELDLEDGER_MASTER_KEY or a key file). Erasing a
customer deletes their data keys: the ciphertext in the immutable, hash-chained
events stays, but nobody - not even an operator with the master key - can read
it again.

Reading is lazy: events decode to `SealedPersonalData`, so aggregates,
projections and rebuilds never see clear personal data; the API opens what it
shows with `disclose`, at the moment of answering, through the roles' masking.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import secrets
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from enum import Enum
from itertools import compress, repeat
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Transcoding
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import get_topic
from fieldledger.application.database import Database, Tx, postgres_sql
from fieldledger.application.event_store import DATA_KEYS_TABLE
from fieldledger.application.transcoder import sorted_json
from fieldledger.domain.complaints import Complainant
from fieldledger.domain.customers import (
    ERASED,
    ContactAccess,
    SealedPersonalData,
    Signature,
    mask_name,
    masked_contact,
)
from fieldledger.domain.work_orders import Customer

#: Value objects holding a person's data: sealed in every event. An aggregate
#: whose events name a customer (e.g. a maintenance contract) uses one of these,
#: or adds its own value object here: a frozen dataclass with a `phone` (the
#: customer id is derived from it) or a `customer_id` field (whose key seals it).
PERSONAL_DATA_TYPES: list[type[Any]] = [Customer, Complainant, Signature]

#: The vault's own secrets (the key of the customer-id hash), wrapped alike.
VAULT_TABLE = "personal_data_vault"
MASTER_KEY_BYTES = 32
_NONCE = 12
_ID_KEY = "customer_id_key"
#: How many customers' data keys a process remembers for sealing (`_data_key`);
#: beyond that it forgets them all and fetches again.
KNOWN_KEYS_MAX = 10_000
#: Statements `_fetch_or_make_key` sends before it gives up: one, unless another
#: process makes the same customer's key at the same moment.
KEY_ATTEMPTS = 5


class MasterKeyError(Exception):
    """No usable master key; the message is one line saying why and what to do."""


class MasterKeyRotated(Exception):
    """The data keys were re-wrapped under another master key: restart with it."""


# -- the master key -----------------------------------------------------------


@dataclass(frozen=True)
class MasterKey:
    key: bytes = dataclasses.field(repr=False)
    #: Where it came from, as told to the operator.
    origin: str
    #: The key file, when it came from one.
    path: Path | None = None
    #: Generated just now (the embedded SQLite default's first start).
    generated: bool = False

    @functools.cached_property
    def key_id(self) -> str:
        """A fingerprint naming the key (in error messages, and beside each
        wrapped key) without revealing it; computed once (an HMAC, asked for
        at every data key fetched)."""
        return hmac.new(self.key, b"fieldledger master key id", hashlib.sha256).hexdigest()[:16]


def new_master_key_text() -> str:
    """A fresh master key as it is written in a key file or the environment."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode()


def parse_master_key(text: str, where: str) -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"{where}: not a master key (32 bytes in base64; `fieldledger keys generate` "
            "makes one)"
        )
    return key


def read_key_file(path: Path, origin: str) -> MasterKey:
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not a text file"
        raise MasterKeyError(f"{origin} {path}: cannot read it ({reason})") from None
    return MasterKey(parse_master_key(text, f"{origin} {path}"), f"key file {path}", path)


def write_key_file(path: Path, text: str) -> None:
    """A new key file, readable by its owner only; never overwrites one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def resolve_master_key(
    store_env: Mapping[str, str], key: str | None = None, key_file: Path | str | None = None
) -> MasterKey:
    """The master key of FIELDLEDGER_MASTER_KEY, else of FIELDLEDGER_MASTER_KEY_FILE.

    Without either: on PostgreSQL, refuse (a production store is never keyed by
    accident); on the embedded SQLite database, the key file beside it
    (`PATH.key`), generated on first use; an in-memory database gets a key
    that lives as long as the process.
    """
    if key:
        return MasterKey(parse_master_key(key, "FIELDLEDGER_MASTER_KEY"), "FIELDLEDGER_MASTER_KEY")
    if key_file:
        return read_key_file(Path(key_file), "FIELDLEDGER_MASTER_KEY_FILE")
    if store_env.get("PERSISTENCE_MODULE") != "eventsourcing.sqlite":
        raise MasterKeyError(
            "no master key: set FIELDLEDGER_MASTER_KEY or FIELDLEDGER_MASTER_KEY_FILE "
            "(refusing to start on PostgreSQL without one; see docs/privacy.md)"
        )
    dbname = store_env.get("SQLITE_DBNAME", "")
    if dbname == ":memory:" or "mode=memory" in dbname:
        return MasterKey(secrets.token_bytes(MASTER_KEY_BYTES), "in-memory database", None, True)
    path = Path(dbname + ".key").absolute()
    if path.exists():
        return read_key_file(path, "master key file")
    text = new_master_key_text()
    try:
        write_key_file(path, text)
    except FileExistsError:  # another process made it first
        return read_key_file(path, "master key file")
    except OSError as e:
        raise MasterKeyError(f"cannot write the master key file {path}: {e.strerror}") from None
    return MasterKey(parse_master_key(text, str(path)), f"key file {path}", path, True)


# -- the vault ------------------------------------------------------------------


def normalized_phone(phone: str) -> str:
    """The phone number as the customer id is derived from it: digits only
    (and a leading +), China's country code dropped from an 11-digit mobile,
    so `+86 138-0000-0000` and `13800000000` are one customer."""
    text = phone.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    international = text.startswith("+")
    if international and digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    if digits.startswith("0086") and len(digits) == 15:
        return digits[4:]
    return ("+" if international else "") + digits


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


#: What `json.dumps(fields, ensure_ascii=False, sort_keys=True)` makes, its C
#: encoder made once: the text of a sealing's fields.
_SEALED_JSON = sorted_json(ensure_ascii=False)


def _sealed_plaintext(fields: dict[str, Any]) -> bytes:
    """The fields' sorted JSON, UTF-8: what a sealing encrypts."""
    return _SEALED_JSON(fields).encode()


#: Values that never hold personal data in clear (`holds_in_clear`).
_PLAIN = (str, bytes, int, float, Decimal, UUID, datetime, date, time_of_day, timedelta,
          Enum, SealedPersonalData, type(None))
#: The same, as exact types: most values are one of these, found in one lookup.
_PLAIN_TYPES = frozenset(_PLAIN)
#: Per type: False when its values are plain (its type is one of `_PLAIN` or a
#: subclass: an enum, a bool), learnt as met; a type not in it is looked at.
#: Read through `map(_LOOK_AT.get, types, repeat(True))`, so that the values
#: of an aggregate or event are sorted in C, not one by one in Python.
_LOOK_AT: dict[type[Any], bool] = dict.fromkeys(_PLAIN_TYPES, False)


def _not_plain(items: Iterable[Any], values: Iterable[Any]) -> list[Any]:
    """Those of `items` (paired one to one with `values`) whose value is not
    of a type known plain (`_LOOK_AT`): the ones worth a look."""
    return list(compress(items, map(_LOOK_AT.get, map(type, values), repeat(True))))


def _learn_plain(kind: type[Any]) -> None:
    """Remember `kind` as plain if it is a subclass of a plain type (an enum,
    a bool): what `isinstance(value, _PLAIN)` says of every value of it."""
    if issubclass(kind, _PLAIN):
        _LOOK_AT[kind] = False


class PersonalDataVault:
    """Customer ids, data keys and the sealing of personal fields.

    Made before the event store (its transcoding is registered with the
    store's), opened on the store's database once it exists.
    """

    def __init__(self, types: Iterable[type[Any]] | None = None) -> None:
        self.types: dict[str, type[Any]] = {}
        for cls in PERSONAL_DATA_TYPES if types is None else types:
            fields = dataclasses.fields(cls)
            if not {f.name for f in fields} & {"phone", "customer_id"}:
                raise TypeError(
                    f"{cls.__qualname__}: personal data needs a `phone` or `customer_id` field"
                )
            if issubclass(cls, _PLAIN):  # `_LOOK_AT` would pass its values over
                raise TypeError(f"{cls.__qualname__}: personal data cannot be a plain type")
            self.types[get_topic(cls)] = cls
        #: Per class met in an event: whether it is one of `types` (by topic,
        #: as `seal` decides), so that a save asks `get_topic` once per class.
        self._personal_classes: dict[type[Any], bool] = {}
        self._db: Database | None = None
        self._master: MasterKey | None = None
        self._id_key = b""
        #: Customer ids by phone number as given, as last derived (a booking
        #: derives its customer's three times: the repeat-call search, the
        #: key's fetch and the sealing). Bounded like `_known`.
        self._customer_ids: dict[str, UUID] = {}
        #: Each customer's data key as last fetched or made, for sealing only
        #: (opening always reads the keys table: `disclose`). Remembered across
        #: commands: a save checks, under the store's write lock, that every
        #: key its events were sealed under still exists (`sealing`,
        #: `DataKeyErased`), so a key erased by another process meanwhile is
        #: refused, forgotten and fetched again (`FieldLedger._save`).
        self._known: dict[str, tuple[str, bytes]] = {}
        #: The cipher of each data key `seal` used, by key id: made once per
        #: key (`AESGCM(key)` sets up OpenSSL's context), forgotten with the key.
        self._ciphers: dict[str, AESGCM] = {}
        #: Per personal data type: its fields' names, in order (`seal`).
        self._field_names: dict[type[Any], tuple[str, ...]] = {}
        #: Per thread: the key ids sealed under since `sealing` began, if it did.
        self._sealing = threading.local()
        self._lock = threading.Lock()
        #: What `seal` last made of each value in clear, for `seal_in_place`: by
        #: the value's id, with a weak reference to it (the id is its own while
        #: the value lives; the data in clear is not kept alive here).
        self._sealed: dict[int, tuple[weakref.ref[Any], SealedPersonalData]] = {}
        #: `_fetch_or_make_key`'s statement, once the vault is open (PostgreSQL).
        self._key_sql: str | None = None

    # -- opening ------------------------------------------------------------

    def open(self, database: Database, master: MasterKey) -> None:
        """Create the tables, and check the master key against the one the
        database was set up with (a wrong key is refused, never used)."""
        self._db = database
        self._master = master
        with database.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(DATA_KEYS_TABLE)} ("
                "key_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL UNIQUE, "
                "wrapped TEXT NOT NULL, master_key_id TEXT NOT NULL, created_at TEXT NOT NULL)"
            )
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(VAULT_TABLE)} ("
                "name TEXT PRIMARY KEY, wrapped TEXT NOT NULL, master_key_id TEXT NOT NULL)"
            )
            tx.execute(
                f"INSERT INTO {tx.table(VAULT_TABLE)} VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (_ID_KEY, self._wrap(secrets.token_bytes(32), _ID_KEY), master.key_id),
            )
        with database.transaction(commit=False) as tx:
            row = tx.query(
                f"SELECT wrapped, master_key_id FROM {tx.table(VAULT_TABLE)} WHERE name = ?",
                (_ID_KEY,),
            )[0]
        try:
            self._id_key = self._unwrap(row["wrapped"], _ID_KEY)
            self._customer_ids = {}
        except InvalidTag:
            raise MasterKeyError(
                f"the master key of {master.origin} (id {master.key_id}) is not the one this "
                f"database's personal data is sealed under (id {row['master_key_id']}): "
                "wrong key"
            ) from None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the personal data vault is not open")
        return self._db

    @property
    def master(self) -> MasterKey:
        if self._master is None:
            raise RuntimeError("the personal data vault is not open")
        return self._master

    def _wrap(self, key: bytes, label: str, master: MasterKey | None = None) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM((master or self.master).key).encrypt(nonce, key, label.encode())
        return _b64(nonce + sealed)

    def _unwrap(self, wrapped: str, label: str, master: MasterKey | None = None) -> bytes:
        raw = _unb64(wrapped)
        return AESGCM((master or self.master).key).decrypt(raw[:_NONCE], raw[_NONCE:],
                                                           label.encode())  # fmt: skip

    # -- customer ids ---------------------------------------------------------

    def customer_id(self, phone: str) -> UUID:
        """The pseudonymous id of the customer with this phone number: stable,
        and not computable without the vault's key (so not reversible by trying
        every phone number)."""
        found = self._customer_ids.get(phone)
        if found is not None:
            return found
        if not self._id_key:
            raise RuntimeError("the personal data vault is not open")
        digest = hmac.digest(self._id_key, normalized_phone(phone).encode(), "sha256")
        found = UUID(bytes=digest[:16])
        if len(self._customer_ids) >= KNOWN_KEYS_MAX:
            self._customer_ids.clear()
        self._customer_ids[phone] = found
        return found

    # -- data keys --------------------------------------------------------------

    def _data_key(self, customer_id: UUID) -> tuple[str, bytes]:
        """The customer's data key, made on first use; remembered (`_known`)."""
        cid = str(customer_id)
        known = self._known.get(cid)
        if known is not None:
            return known
        found = self._fetch_data_key(cid)
        with self._lock:
            if len(self._known) >= KNOWN_KEYS_MAX:
                self._known.clear()
                self._ciphers.clear()
            self._known[cid] = found
        return found

    def _cipher(self, key_id: str, key: bytes) -> AESGCM:
        """The AES-GCM cipher of this data key, made on first use (`_ciphers`)."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = AESGCM(key)
            with self._lock:
                if len(self._ciphers) >= KNOWN_KEYS_MAX:
                    self._ciphers.clear()
                self._ciphers[key_id] = cipher
        return cipher

    def forget(self, key_ids: Iterable[str]) -> None:
        """Forget these data keys (erased, by this process or another): the next
        sealing for their customers fetches the key again (or makes a new one)."""
        gone = set(key_ids)
        with self._lock:
            for cid in [c for c, (k, _) in self._known.items() if k in gone]:
                del self._known[cid]
            for key_id in gone:
                self._ciphers.pop(key_id, None)

    def forget_customer(self, customer_id: UUID) -> None:
        with self._lock:
            known = self._known.pop(str(customer_id), None)
            if known is not None:
                self._ciphers.pop(known[0], None)

    @contextmanager
    def sealing(self) -> Iterator[list[str]]:
        """The ids of the data keys `seal` uses in this thread meanwhile (the
        list grows as the events are encoded), for the save to check they still
        exist when it takes the store's write lock."""
        used: list[str] = []
        outer = getattr(self._sealing, "used", None)
        self._sealing.used = used
        try:
            yield used
        finally:
            self._sealing.used = outer

    def _fetch_data_key(self, cid: str) -> tuple[str, bytes]:
        if isinstance(self.db.datastore, PostgresDatastore):
            return self._fetch_or_make_key(self.db.datastore, cid)
        return self._fetch_or_make_key_in_transaction(cid)

    def _fetch_or_make_key_in_transaction(self, cid: str) -> tuple[str, bytes]:
        """SQLite's `_fetch_data_key` (and PostgreSQL's before
        `_fetch_or_make_key`): a read, then a transaction that inserts a key
        unless another process did, checks the master key was not rotated
        meanwhile, and reads the key again."""
        with self.db.read() as tx:
            rows = tx.query(
                f"SELECT key_id, wrapped, master_key_id FROM {tx.table(DATA_KEYS_TABLE)} "
                "WHERE customer_id = ?",
                (cid,),
            )
        if not rows:
            key_id = uuid4().hex
            with self.db.transaction() as tx:
                tx.execute(
                    f"INSERT INTO {tx.table(DATA_KEYS_TABLE)} VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (customer_id) DO NOTHING",
                    (key_id, cid, self._wrap(secrets.token_bytes(32), key_id),
                     self.master.key_id, datetime.now(UTC).isoformat()),
                )  # fmt: skip
                # A key wrapped under a master key that was rotated away meanwhile
                # would be unreadable after this process stops: refuse it.
                self._check_not_rotated(tx)
                rows = tx.query(
                    f"SELECT key_id, wrapped, master_key_id FROM {tx.table(DATA_KEYS_TABLE)} "
                    "WHERE customer_id = ?",
                    (cid,),
                )
        row = rows[0]
        return row["key_id"], self._open_key(row)

    def _fetch_or_make_key(self, datastore: PostgresDatastore, cid: str) -> tuple[str, bytes]:
        """PostgreSQL: `_fetch_data_key` in one statement, in autocommit, one
        round trip (it was up to six: the read, then BEGIN, the insert, the
        rotation check, the read again, COMMIT): the customer's key if one is
        stored, else a new one, inserted unless the vault's master key is
        another (`_key_sql`). The new key is wrapped before it is known to be
        needed: a few microseconds, against a round trip."""
        if self._key_sql is None:
            self._key_sql = _key_sql(self.db.table(VAULT_TABLE), self.db.table(DATA_KEYS_TABLE))
        master_id = self.master.key_id
        for _attempt in range(KEY_ATTEMPTS):
            key_id = uuid4().hex
            wrapped = self._wrap(secrets.token_bytes(32), key_id)
            params = (_ID_KEY, key_id, cid, wrapped, datetime.now(UTC).isoformat(), master_id, cid)
            with datastore.get_connection() as conn:
                rows = conn.execute(self._key_sql, params, prepare=True).fetchall()
            found = next((r for r in rows if r["key_id"] is not None), None)
            if found is not None:
                return found["key_id"], self._open_key(found)
            current = next((r["master_key_id"] for r in rows), None)
            if current != master_id:
                # Rotated away: a key wrapped under this process's master key
                # would be unreadable once it stops (nothing was inserted).
                raise MasterKeyRotated(
                    f"the master key was rotated to id {current}: restart with the new key"
                )
            # Made by another process after this statement's snapshot began
            # (the insert waited for it, then did nothing): read it again.
        raise RuntimeError(f"no data key for customer {cid} after {KEY_ATTEMPTS} attempts")

    def _check_not_rotated(self, tx: Tx) -> None:
        current = tx.scalar(
            f"SELECT master_key_id FROM {tx.table(VAULT_TABLE)} WHERE name = ?", (_ID_KEY,)
        )
        if current != self.master.key_id:
            raise MasterKeyRotated(
                f"the master key was rotated to id {current}: restart with the new key"
            )

    def _open_key(self, row: Mapping[str, Any]) -> bytes:
        if row["master_key_id"] != self.master.key_id:
            raise MasterKeyRotated(
                f"data keys are wrapped under master key id {row['master_key_id']}, this "
                f"process holds id {self.master.key_id}: restart with the current key"
            )
        return self._unwrap(row["wrapped"], row["key_id"])

    def _keys(self, key_ids: Iterable[str], tx: Tx | None = None) -> dict[str, bytes]:
        """The data keys that still exist among these (one query; in `tx` if
        given, else in a read transaction of its own)."""
        wanted = sorted(set(key_ids))
        if not wanted:
            return {}
        statement = (
            f"SELECT key_id, wrapped, master_key_id FROM {self.db.table(DATA_KEYS_TABLE)} "
            f"WHERE key_id IN ({', '.join('?' for _ in wanted)})"
        )
        if tx is not None:
            rows = tx.query(statement, wanted)
        else:
            with self.db.read() as own:
                rows = own.query(statement, wanted)
        return {r["key_id"]: self._open_key(r) for r in rows}

    def key_count(self, customer_id: UUID) -> int:
        with self.db.transaction(commit=False) as tx:
            return int(
                tx.scalar(
                    f"SELECT COUNT(*) FROM {tx.table(DATA_KEYS_TABLE)} WHERE customer_id = ?",
                    (str(customer_id),),
                )
            )

    # -- sealing and opening --------------------------------------------------

    def _owner(self, fields: dict[str, Any]) -> UUID:
        owner = fields.pop("customer_id", None)
        return UUID(owner) if owner else self.customer_id(str(fields["phone"]))

    def _owner_of(self, value: Any) -> UUID:
        """`_owner` of the value's fields, read off the value itself."""
        owner = getattr(value, "customer_id", None)
        return UUID(owner) if owner else self.customer_id(str(value.phone))

    def _is_personal(self, cls: type[Any]) -> bool:
        """Whether values of `cls` are personal data in clear (`seal` takes them)."""
        known = self._personal_classes.get(cls)
        if known is None:
            known = self._personal_classes[cls] = get_topic(cls) in self.types
        return known

    def prepare(self, events: Iterable[Any]) -> bool:
        """Fetch (or make) the data keys these events' personal data will be
        sealed with, unless known already, in the caller's thread: the group
        commit that encodes and writes them then does no key I/O in its
        critical section. Says whether any of them holds personal data in
        clear."""
        clear = False
        personal = self._personal_classes
        for event in events:
            state = vars(event).values()
            # Only the values of a type not known plain (`_not_plain`, in C)
            # are asked about: most of an event's are texts, ids, instants.
            for value in _not_plain(state, state):
                known = personal.get(type(value))
                if known is None:
                    known = self._is_personal(type(value))
                if known:
                    self._data_key(self._owner_of(value))
                    clear = True
        return clear

    def holds_in_clear(self, aggregate: Any) -> bool:
        """Whether anything in the aggregate's state is personal data in clear.

        Conservative: a value of a kind not known to hold no personal data
        (plain values, sealed data, enums, and the containers, dataclasses and
        objects walked into) counts as holding some."""
        clear = tuple(self.types.values())
        # Its attributes of a type known plain are passed over in C
        # (`_not_plain`); the rest, and whatever they hold, are walked.
        state = vars(aggregate).values()
        stack: list[Any] = _not_plain(state, state)
        while stack:
            value = stack.pop()
            kind = type(value)
            if kind in _PLAIN_TYPES:
                continue
            if kind is list or kind is tuple:  # as below, without six isinstance
                stack.extend(value)
                continue
            if isinstance(value, _PLAIN):
                _learn_plain(type(value))
                continue
            if isinstance(value, clear):
                return True
            if isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())
            elif isinstance(value, list | tuple | set | frozenset):
                stack.extend(value)
            elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                stack.extend(getattr(value, f.name) for f in dataclasses.fields(value))
            elif hasattr(value, "__dict__") and not isinstance(value, type):
                stack.extend(vars(value).values())
            else:
                return True
        return False

    def seal(self, value: Any) -> SealedPersonalData:
        kind = type(value)
        topic = get_topic(kind)
        if topic not in self.types:
            raise TypeError(f"{kind.__qualname__} is not a personal data type")
        names = self._field_names.get(kind)
        if names is None:
            names = self._field_names[kind] = tuple(f.name for f in dataclasses.fields(kind))
        fields = {name: getattr(value, name) for name in names}
        customer_id = self._owner(fields)
        key_id, key = self._data_key(customer_id)
        used: list[str] | None = getattr(self._sealing, "used", None)
        if used is not None:
            used.append(key_id)
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._cipher(key_id, key).encrypt(
            nonce, _sealed_plaintext(fields), _aad(topic, str(customer_id), key_id)
        )
        result = SealedPersonalData(topic, str(customer_id), key_id, _b64(nonce + sealed))
        try:
            held = weakref.ref(value)
        except TypeError:  # a type without weak references: never sealed in place
            return result
        with self._lock:
            if len(self._sealed) > 10_000:  # sealed for saves that keep no aggregate
                self._sealed.clear()
            self._sealed[id(value)] = (held, result)
        return result

    def seal_in_place(self, aggregate: Any) -> None:
        """Put in the aggregate's attributes that hold personal data in clear
        what its save has just written for them: the sealed data, as an
        aggregate read from the store holds it (an attribute whose value was
        not sealed by this process is left as it is)."""
        clear = tuple(self.types.values())
        state = vars(aggregate)
        # Only the attributes of a type not known plain are looked at (in C).
        for name, value in _not_plain(state.items(), state.values()):
            if isinstance(value, clear):
                with self._lock:
                    found = self._sealed.pop(id(value), None)
                if found is not None and found[0]() is value:
                    setattr(aggregate, name, found[1])

    def _fields_of(self, topic: str) -> list[str]:
        cls = self.types.get(topic)
        if cls is None:
            return []
        return [f.name for f in dataclasses.fields(cls) if f.name != "customer_id"]

    def _open(self, sealed: Mapping[str, Any], keys: Mapping[str, bytes]) -> dict[str, Any]:
        """The contact as a dict (`customer_id`, then its fields), each field
        `[erased]` when the key is gone."""
        key = keys.get(sealed["key_id"])
        contact: dict[str, Any] = {"customer_id": sealed["customer_id"]}
        if key is None:
            contact.update({name: ERASED for name in self._fields_of(sealed["sealed"])})
            return contact
        raw = _unb64(sealed["ciphertext"])
        try:
            clear = AESGCM(key).decrypt(
                raw[:_NONCE], raw[_NONCE:],
                _aad(sealed["sealed"], sealed["customer_id"], sealed["key_id"]),
            )  # fmt: skip
        except InvalidTag:
            # Never garbage: a ciphertext that does not authenticate is refused.
            raise ValueError(
                f"personal data of customer {sealed['customer_id']} does not authenticate "
                f"under its key {sealed['key_id']}"
            ) from None
        contact.update(json.loads(clear))
        return contact

    def _legacy(self, contact: Mapping[str, Any]) -> dict[str, Any]:
        """A contact recorded in clear before sealing existed: shown as it is."""
        phone = contact.get("phone")
        shown: dict[str, Any] = {
            "customer_id": None if not isinstance(phone, str) else str(self.customer_id(phone))
        }
        shown.update(contact)
        return shown

    def reveal(self, value: Any) -> dict[str, Any]:
        """One contact held by an event or aggregate, in clear (or `[erased]`)."""
        shown = self.disclose({"customer": _plain(value)}, ContactAccess.FULL)
        return dict(shown["customer"])

    def disclose(self, data: Any, access: ContactAccess, *, tx: Tx | None = None) -> Any:
        """`data` (an event's or a view's JSON) with each sealed contact opened
        and shown as `access` may see it; one query for all the keys needed (in
        `tx`, a read model's open transaction, if given: no round trips of its
        own)."""
        found: list[Mapping[str, Any]] = []
        _walk(data, found.append)
        keys = self._keys((s["key_id"] for s in found if _is_sealed(s)), tx)

        def show(held: Any) -> Any:
            if isinstance(held, str):  # a name recorded in clear before sealing
                return held if access is ContactAccess.FULL else mask_name(held)
            if not _is_sealed(held):
                return masked_contact(self._legacy(held), access)
            opened = self._open(held, keys)
            shown_as = getattr(self.types.get(held["sealed"]), "shown_as", None)
            if shown_as is not None:  # e.g. a signature: the name alone
                value = opened.get(shown_as, ERASED)
                return value if access is ContactAccess.FULL else mask_name(value)
            return masked_contact(opened, access)

        return _replace(data, show)

    # -- erasure and rotation -----------------------------------------------------

    def rotate_master(self, new: MasterKey) -> int:
        """Re-wrap every data key (and the vault's own key) under `new`, in one
        transaction; the events are not touched. Returns the keys re-wrapped."""
        if new.key_id == self.master.key_id:
            raise MasterKeyError("the new master key is the current one")
        with self.db.transaction() as tx:
            # The first write takes SQLite's write lock; on PostgreSQL keys made
            # meanwhile by a running service wait for the new wrapping.
            tx.execute(
                f"UPDATE {tx.table(VAULT_TABLE)} SET master_key_id = master_key_id WHERE name = ?",
                (_ID_KEY,),
            )
            if tx.dialect == "postgres":
                tx.execute(f"LOCK TABLE {tx.table(DATA_KEYS_TABLE)} IN EXCLUSIVE MODE")
            rewrapped = 0
            for row in tx.query(f"SELECT name, wrapped FROM {tx.table(VAULT_TABLE)}"):
                clear = self._unwrap(row["wrapped"], row["name"])
                tx.execute(
                    f"UPDATE {tx.table(VAULT_TABLE)} SET wrapped = ?, master_key_id = ? "
                    "WHERE name = ?",
                    (self._wrap(clear, row["name"], new), new.key_id, row["name"]),
                )
            for row in tx.query(
                f"SELECT key_id, wrapped, master_key_id FROM {tx.table(DATA_KEYS_TABLE)}"
            ):
                clear = self._open_key(row)
                tx.execute(
                    f"UPDATE {tx.table(DATA_KEYS_TABLE)} SET wrapped = ?, master_key_id = ? "
                    "WHERE key_id = ?",
                    (self._wrap(clear, row["key_id"], new), new.key_id, row["key_id"]),
                )
                rewrapped += 1
        self._master = new
        return rewrapped


def _key_sql(vault: str, keys: str) -> str:
    """`_fetch_or_make_key`'s statement: the rows of a new key (if inserted)
    and of the stored one (if any; at most one of the two: the insert's row is
    not visible to the statement's own reads), then the vault's master key id.
    The insert takes its lock on the keys table before the statement's
    snapshot is taken, so it waits for a rotation in progress (`rotate_master`
    locks the table) and then reads the vault as the rotation left it: a key
    wrapped under a master key rotated away is never inserted; a key inserted
    before a rotation takes its lock is re-wrapped by it."""
    return postgres_sql(
        f"WITH vault AS (SELECT master_key_id FROM {vault} WHERE name = ?), "
        f"made AS (INSERT INTO {keys} (key_id, customer_id, wrapped, master_key_id, created_at) "
        "SELECT ?, ?, ?, v.master_key_id, ? FROM vault v WHERE v.master_key_id = ? "
        "ON CONFLICT (customer_id) DO NOTHING RETURNING key_id, wrapped, master_key_id) "
        "SELECT key_id, wrapped, master_key_id FROM made "
        f"UNION ALL SELECT key_id, wrapped, master_key_id FROM {keys} WHERE customer_id = ? "
        "UNION ALL SELECT NULL, NULL, master_key_id FROM vault"
    )


def _aad(topic: str, customer_id: str, key_id: str) -> bytes:
    """What the ciphertext is bound to: moved to another customer, key or type,
    it no longer authenticates."""
    return f"fieldledger personal data|{topic}|{customer_id}|{key_id}".encode()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and {"sealed", "customer_id", "key_id", "ciphertext"} <= (
        value.keys()
    )


#: Fields that held a person's name in clear before sealing existed.
_CLEAR_NAMES = frozenset({"signed_by"})


def _is_contact(value: Any, key: str | None) -> bool:
    """Sealed personal data, or (in events recorded before sealing) clear: a
    `customer` with a phone, a `signed_by` name."""
    if isinstance(value, str):
        return key in _CLEAR_NAMES
    if not isinstance(value, dict):
        return False
    return _is_sealed(value) or (key == "customer" and isinstance(value.get("phone"), str))


def _walk(data: Any, found: Any, key: str | None = None) -> None:
    if _is_contact(data, key):
        found(data)
    elif isinstance(data, dict):
        for k, v in data.items():
            _walk(v, found, k)
    elif isinstance(data, list):
        for v in data:
            _walk(v, found)


def _replace(data: Any, show: Any, key: str | None = None) -> Any:
    if _is_contact(data, key):
        return show(data)
    if isinstance(data, dict):
        return {k: _replace(v, show, k) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace(v, show) for v in data]
    return data


_SEALED_FIELDS = tuple(f.name for f in dataclasses.fields(SealedPersonalData))


class PersonalDataTranscoding(Transcoding):
    """The step every personal data value object goes through into an event:
    sealed on the way in, kept sealed on the way out (opened only by
    `PersonalDataVault.disclose`). One name for all the types: what is stored
    is always a `SealedPersonalData`."""

    name = "personal_data"

    def __init__(self, value_type: type[Any], vault: PersonalDataVault) -> None:
        self.type = value_type
        self.vault = vault

    def encode(self, obj: Any) -> dict[str, str]:
        sealed = obj if isinstance(obj, SealedPersonalData) else self.vault.seal(obj)
        # `dataclasses.asdict` of its four texts, without the deep copy.
        return {name: getattr(sealed, name) for name in _SEALED_FIELDS}

    def decode(self, data: dict[str, str]) -> SealedPersonalData:
        return SealedPersonalData(**data)


def personal_data_transcodings(vault: PersonalDataVault) -> list[Transcoding]:
    return [
        PersonalDataTranscoding(cls, vault) for cls in [*vault.types.values(), SealedPersonalData]
    ]
