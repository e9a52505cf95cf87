"""Stream an audit log and add up, per window, what the monitor needs (no user attribute is read from the log).

The reader never holds the whole log: it reads :data:`CHUNK` records at a time
(JSON lines line by line, SQLite through a cursor) and adds each chunk into
per-window sums (:class:`WindowSums`). User attributes are joined here, at
analysis time, from the user table by ``user_id``; the log itself holds none.

What is a list: a record of the ``recommendations`` or ``transparency``
endpoint. ``similar`` lists (no user) are counted but not analysed. A
``feedback`` record (see :mod:`recsys.serving._feedback`) is an event
(``basis`` = ``click`` or ``not_interested``) credited to the window of the
event and the group of its user.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from evaluation import log_rank_weight, rank_exposure
from recsys.errors import DataError
from recsys.serving._settings import AUDIT_SUFFIXES

__all__ = [
    "BASES", "CHUNK", "FEEDBACK_EVENTS", "LIST_ENDPOINTS", "Catalogue", "WindowSums", "accumulate", "add_lists",
    "iter_records", "window_keys",
]

CHUNK = 50_000
LIST_ENDPOINTS = ("recommendations", "transparency")
BASES = ("history", "no_history", "opted_out", "unknown_user")
FEEDBACK_EVENTS = ("click", "not_interested")


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """Item and user attributes the sums are keyed by, resolved once."""

    item_array: pa.Array  # external item ids (as text), in internal order
    n_items: int
    item_group: np.ndarray  # int code per item (exposure by item group)
    item_groups: list[str]
    protected: np.ndarray  # bool per item
    category: np.ndarray  # int code per item (list mix)
    categories: list[str]
    user_array: pa.Array  # external user ids (as text) of the user table
    user_codes: dict[str, np.ndarray]  # attribute -> int code per row of the user table
    group_names: dict[str, list[str]]  # attribute -> labels of the codes (last: "unknown")


def _new_moments(n: int) -> np.ndarray:
    return np.zeros((n, 6))


@dataclass
class WindowSums:
    """Running sums of one window (mutable while reading; read once at the end)."""

    n_lists: int = 0
    n_similar: int = 0
    n_unknown_items: int = 0
    n_withheld: int = 0  # lists with item categories left out at the user's request
    basis: dict[str, int] = field(default_factory=dict)
    item_exposure: np.ndarray | None = None
    item_counts: np.ndarray | None = None
    moments: np.ndarray | None = None  # (6,): RatioMoments of protected / total exposure per list
    by_group: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    feedback: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def ensure(self, cat: Catalogue) -> None:
        if self.item_exposure is not None:
            return
        self.item_exposure = np.zeros(cat.n_items)
        self.item_counts = np.zeros(cat.n_items)
        self.moments = np.zeros(6)
        for attr, names in cat.group_names.items():
            g = len(names)
            self.by_group[attr] = {"lists": np.zeros(g), "moments": _new_moments(g),
                                   "mix": np.zeros((g, len(cat.categories)))}
            self.feedback[attr] = {e: np.zeros(g) for e in FEEDBACK_EVENTS}


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A block of audit records as columns (Arrow arrays from the JSON or SQLite reader)."""

    time: pa.Array  # timestamp[ns, UTC]
    endpoint: np.ndarray  # object
    user_id: pa.Array  # string, null for similar-item lists
    model: np.ndarray  # object, "name/version"
    basis: pa.Array  # string
    items: pa.ListArray  # list<string>
    withheld: np.ndarray  # bool: the user had withdrawn item categories (absent in older logs: False)

    def __len__(self) -> int:
        return len(self.endpoint)


_SCHEMA = pa.schema([(n, pa.string()) for n in ("time", "endpoint", "user_id", "model_name", "model_version",
                                                 "basis")] + [("items", pa.list_(pa.string())),
                                                              ("withheld_categories", pa.list_(pa.string()))])
_REQUIRED = ("time", "endpoint", "items", "basis")


def _chunk(table: pa.Table, where: str) -> Chunk:
    for name in _REQUIRED:
        nulls = table[name].null_count
        if nulls:
            raise DataError(f"{where}: {nulls} record(s) without a {name!r} field")
    try:
        time = pc.cast(table["time"], pa.timestamp("ns", tz="UTC")).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{where}: a record's 'time' is not an ISO 8601 timestamp: {exc}") from exc
    model = pc.binary_join_element_wise(pc.fill_null(table["model_name"], "None"),
                                        pc.fill_null(table["model_version"], "None"), "/")
    return Chunk(time=time, endpoint=table["endpoint"].to_numpy(zero_copy_only=False),
                 user_id=table["user_id"].combine_chunks(), model=model.to_numpy(zero_copy_only=False),
                 basis=table["basis"].combine_chunks(), items=table["items"].combine_chunks(),
                 withheld=_withheld(table))


def _withheld(table: pa.Table) -> np.ndarray:
    if "withheld_categories" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    lengths = pc.fill_null(pc.list_value_length(table["withheld_categories"]), 0)
    return lengths.to_numpy() > 0


def _parse(block: bytes, where: str) -> Chunk:
    try:
        table = pj.read_json(pa.BufferReader(block), parse_options=pj.ParseOptions(
            explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"))
    except pa.ArrowInvalid as exc:
        raise DataError(f"{where}: not a fairrec audit log in JSON lines: {exc}") from exc
    return _chunk(table, where)


def iter_records(path: Path) -> Iterator[Chunk]:
    """Blocks of audit records (about :data:`CHUNK` each), in log order."""
    kind = AUDIT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"audit: expected a file ending in {', '.join(AUDIT_SUFFIXES)}, got {str(path)!r}")
    if not path.is_file():
        raise DataError(f"audit: {path} does not exist")
    if kind == "jsonl":
        for part in rotated_files(path):
            yield from _jsonl_chunks(part)
    else:
        yield from _sqlite_chunks(path)


def rotated_files(path: Path) -> list[Path]:
    """The service's rotated JSON-lines files, oldest first: ``audit.jsonl.N`` ... ``.1``, ``audit.jsonl``."""
    backups = [p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()]
    return sorted(backups, key=lambda p: -int(p.suffix[1:])) + [path]


def _jsonl_chunks(path: Path) -> Iterator[Chunk]:
    # whole lines only: Arrow's JSON reader parses a block of lines in C++ (pyarrow.json.read_json)
    first = 1
    with path.open("rb") as fh:
        while lines := fh.readlines(CHUNK * 400):
            block = b"".join(line for line in lines if line.strip())
            if block:
                yield _parse(block, f"audit {path} (lines {first}-{first + len(lines) - 1})")
            first += len(lines)


def _sqlite_chunks(path: Path) -> Iterator[Chunk]:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"audit: cannot open SQLite database {path}: {exc}") from exc
    names = ("time", "endpoint", "user_id", "model_name", "model_version", "basis")
    try:
        columns_present = {row[1] for row in conn.execute("PRAGMA table_info(audit)")}
        withheld = "withheld_categories" if "withheld_categories" in columns_present else "'[]'"
        cur = conn.execute(f"SELECT {', '.join(names)}, items, {withheld} FROM audit ORDER BY id")
        while rows := cur.fetchmany(CHUNK):
            columns = list(zip(*rows, strict=True))
            # items are JSON text: parsed in one block by Arrow's JSON reader
            lists = _parse(b"".join(b'{"time":"1970-01-01T00:00:00+00:00","endpoint":"","basis":"","items":'
                                    + t.encode() + b',"withheld_categories":' + w.encode() + b"}\n"
                                    for t, w in zip(columns[6], columns[7], strict=True)), f"audit {path}")
            table = pa.table({n: pa.array(c, type=pa.string()) for n, c in zip(names, columns, strict=False)}
                             | {"items": lists.items, "withheld_categories": pa.array(
                                 [["x"] if w else [] for w in lists.withheld], type=pa.list_(pa.string()))})
            yield _chunk(table, f"audit {path}")
    except sqlite3.Error as exc:
        raise DataError(f"audit: {path} has no readable fairrec audit table: {exc}") from exc
    finally:
        conn.close()


def window_keys(chunk: Chunk, ordinals: np.ndarray, window: str | int) -> np.ndarray:
    """Window key per record: start (ns since epoch, UTC) of its hour/day, or ``ordinal // window``."""
    if isinstance(window, int):
        return ordinals // window
    ns = chunk.time.cast(pa.int64()).to_numpy()
    period = {"hour": 3_600, "day": 86_400}[window] * 1_000_000_000
    return ns // period * period


def _lists_to_ids(items: pa.ListArray, cat: Catalogue) -> tuple[np.ndarray, int]:
    """Padded internal ids ``[n, k_max]`` (``-1`` padding) and the number of items not in the catalogue."""
    offsets = items.offsets.to_numpy()
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    # Arrow's hash lookup (pyarrow.compute.index_in): a tenth of pandas' over Python strings
    flat = pc.fill_null(pc.index_in(items.flatten(), value_set=cat.item_array), -1).to_numpy().astype(np.int64)
    k = int(lengths.max()) if lengths.size else 0
    ids = np.full((len(items), max(k, 1)), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(items)), lengths)
    ids[rows, np.arange(flat.size) - offsets[rows]] = flat
    return ids, int(np.count_nonzero(flat < 0))


def _group_codes(cat: Catalogue, attr: str, user_ids: pa.Array) -> np.ndarray:
    codes = pc.fill_null(pc.index_in(user_ids, value_set=cat.user_array), -1).to_numpy()
    table = cat.user_codes[attr]
    return np.where(codes >= 0, table[np.maximum(codes, 0)], len(cat.group_names[attr]) - 1)


def accumulate(sums: dict[int, WindowSums], chunk: Chunk, keys: np.ndarray, cat: Catalogue) -> None:
    """Add one chunk of records (with their window keys) into ``sums``."""
    endpoint = chunk.endpoint
    is_list = (endpoint == LIST_ENDPOINTS[0]) | (endpoint == LIST_ENDPOINTS[1])
    for key in np.unique(keys):
        in_window = keys == key
        acc = sums.setdefault(int(key), WindowSums())
        acc.ensure(cat)
        acc.n_similar += int(np.count_nonzero(in_window & (endpoint == "similar")))
        idx = np.flatnonzero(in_window & is_list)
        if idx.size:
            ids, unknown = _lists_to_ids(chunk.items.take(pa.array(idx)), cat)
            acc.n_unknown_items += unknown
            acc.n_withheld += int(np.count_nonzero(chunk.withheld[idx]))
            take = pa.array(idx)
            add_lists(acc, chunk.user_id.take(take), ids, chunk.basis.take(take), cat)
        fb = np.flatnonzero(in_window & (endpoint == "feedback"))
        if fb.size:
            take = pa.array(fb)
            _add_feedback(acc, chunk.user_id.take(take), chunk.basis.take(take).to_numpy(zero_copy_only=False), cat)


def add_lists(acc: WindowSums, user_ids: pa.Array, ids: np.ndarray, basis: pa.Array,
              cat: Catalogue) -> None:
    """Add lists given as internal ids (the offline reference enters here too)."""
    acc.ensure(cat)
    assert acc.item_exposure is not None and acc.item_counts is not None and acc.moments is not None
    n, k = ids.shape
    acc.n_lists += n
    for row in pc.value_counts(basis).to_pylist():
        acc.basis[row["values"]] = acc.basis.get(row["values"], 0) + row["counts"]
    # the offline evaluation's exposure: evaluation.rank_exposure with its default (DCG) weights
    acc.item_exposure += rank_exposure(ids, cat.n_items)
    acc.item_counts += rank_exposure(ids, cat.n_items, weight=np.ones(k))
    valid = ids >= 0
    w = np.where(valid, log_rank_weight(k)[None, :], 0.0)
    prot = np.where(valid, cat.protected[np.where(valid, ids, 0)], False)
    a, b = (w * prot).sum(axis=1), w.sum(axis=1)
    per_list = np.stack([np.ones(n), a, b, a * a, b * b, a * b], axis=1)
    acc.moments += per_list.sum(axis=0)
    n_cat = len(cat.categories)
    rows = np.nonzero(valid)[0]
    codes = cat.category[ids[valid]]
    for attr, names in cat.group_names.items():
        g = _group_codes(cat, attr, user_ids)
        part = acc.by_group[attr]
        part["lists"] += np.bincount(g, minlength=len(names))
        for j in range(6):
            part["moments"][:, j] += np.bincount(g, weights=per_list[:, j], minlength=len(names))
        part["mix"] += np.bincount(g[rows] * n_cat + codes, minlength=len(names) * n_cat).reshape(-1, n_cat)


def _add_feedback(acc: WindowSums, users: pa.Array, event: np.ndarray, cat: Catalogue) -> None:
    for attr, names in cat.group_names.items():
        g = _group_codes(cat, attr, users)
        for e in FEEDBACK_EVENTS:
            acc.feedback[attr][e] += np.bincount(g[event == e], minlength=len(names))

