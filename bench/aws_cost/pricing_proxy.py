#!/usr/bin/env python3
"""Transparent pricing proxy between AWS SDK clients and a moto server.

Every request is forwarded verbatim to the upstream (moto in server mode) and the
response is returned verbatim. On the side, each DynamoDB, DynamoDB Streams and SQS
call is recorded together with what AWS would bill for it (on-demand request units
computed the way DynamoDB computes consumed capacity, SQS 64 KB request chunks).

    python3 bench/aws_cost/pricing_proxy.py --upstream http://127.0.0.1:5000 \
        [--listen 127.0.0.1:0] [--port-file PATH]

Control endpoints (answered by the proxy, never forwarded):
    GET  /__stats        totals, per operation, per table, per index
    POST /__reset        zero every counter
    GET  /__log?n=200    the last n recorded calls

Doc pages the capacity rules follow (see README.md for the full list):
  item sizes ...... https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
  reads / writes .. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
  GSI writes ...... https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes
  transactions .... https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling
  streams reads ... https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html

Only the standard library plus boto3/botocore is used.
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import http.client
import json
import math
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import zlib
from decimal import Context, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --------------------------------------------------------------------------------------
# Constants of the billing model
# --------------------------------------------------------------------------------------

WRITE_UNIT_BYTES = 1024  # one write request unit per 1 KB (rounded up)
READ_UNIT_BYTES = 4096  # one read request unit per 4 KB (rounded up), strongly consistent
TX_FACTOR = 2  # transactional reads/writes: prepare + commit
# GSI propagation of a transactional write: the transaction docs say changes reach GSIs
# "after the transaction completes", i.e. by the ordinary index maintenance; nothing says it
# is doubled. Counted once (assumption, see README).
TX_INDEX_FACTOR = 1
# A cancelled TransactWriteItems: the docs do not say what it bills. We charge the prepare
# half only (one unit per KB of each targeted item as it stands, minimum 1, no index
# writes) and count the cancellations separately (assumption, see README).
CANCELLED_TX_FACTOR = 1
SQS_CHUNK_BYTES = 64 * 1024  # each 64 KB chunk of a payload is one billable request

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",  # 100-continue was already answered by the handler
    "content-length",  # always recomputed
}

CONTROL_PATHS = ("/__stats", "/__reset", "/__log")

# --------------------------------------------------------------------------------------
# Item size (DynamoDB "Item sizes and formats")
# --------------------------------------------------------------------------------------


def _b64_len(value) -> int:
    """Raw length of a binary value: bytes from boto3, base64 text from the wire."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=False))
    except (ValueError, TypeError):
        return len(str(value))


def number_size(text: str) -> int:
    """Size of a Number value: 1 byte per two significant digits, plus 1 byte.

    Leading and trailing zeroes are trimmed (so 0 has no significant digit and costs 1
    byte). The docs call this an approximation of the real encoding; it is what we use.
    """
    try:
        digits = list(Decimal(str(text).strip()).as_tuple().digits)
    except (InvalidOperation, ValueError):
        return len(str(text)) // 2 + 1
    while digits and digits[0] == 0:
        digits.pop(0)
    while digits and digits[-1] == 0:
        digits.pop()
    return (len(digits) + 1) // 2 + 1


def value_size(av: dict) -> int:
    """Size of one AttributeValue (without its attribute name)."""
    if not isinstance(av, dict) or len(av) != 1:
        # Not a typed value; be lenient and size its JSON.
        return len(json.dumps(av, default=str).encode())
    (kind, v), = av.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return _b64_len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        # Sets are not spelled out on the current page; the sum of the elements' sizes.
        return sum(len(e.encode("utf-8")) for e in v)
    if kind == "NS":
        return sum(number_size(e) for e in v)
    if kind == "BS":
        return sum(_b64_len(e) for e in v)
    if kind == "L":
        # 3 bytes of overhead for the List, plus 1 byte per element.
        return 3 + sum(value_size(e) + 1 for e in v)
    if kind == "M":
        # 3 bytes of overhead for the Map, plus per element: its name, its value, 1 byte.
        return 3 + sum(len(k.encode("utf-8")) + value_size(e) + 1 for k, e in v.items())
    return len(json.dumps(v, default=str).encode())


def item_size(item: dict | None) -> int:
    """Sum over attributes of (UTF-8 bytes of the name + size of the value)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(av) for name, av in item.items())


def write_units(size: int) -> int:
    """Write request units for one item write of `size` bytes: 1 per KB, minimum 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool = True) -> float:
    """Read request units for `size` bytes read: 1 per 4 KB (min 1), half if eventual."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units if consistent else units / 2


# --------------------------------------------------------------------------------------
# Canonical values (for comparing wire JSON with boto3 output) and wire -> boto3 form
# --------------------------------------------------------------------------------------

_DEC = Context(prec=100)


def _canon_number(text: str):
    try:
        return str(_DEC.normalize(Decimal(str(text).strip())))
    except (InvalidOperation, ValueError):
        return str(text)


def _canon_bytes(v) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    try:
        return base64.b64decode(v)
    except (ValueError, TypeError):
        return str(v).encode()


def canon(av):
    """Hashable canonical form of an AttributeValue, equal for equal values."""
    if not isinstance(av, dict) or len(av) != 1:
        return ("?", json.dumps(av, sort_keys=True, default=str))
    (kind, v), = av.items()
    if kind == "N":
        return ("N", _canon_number(v))
    if kind == "B":
        return ("B", _canon_bytes(v))
    if kind == "SS":
        return ("SS", frozenset(v))
    if kind == "NS":
        return ("NS", frozenset(_canon_number(e) for e in v))
    if kind == "BS":
        return ("BS", frozenset(_canon_bytes(e) for e in v))
    if kind == "L":
        return ("L", tuple(canon(e) for e in v))
    if kind == "M":
        return ("M", tuple(sorted((k, canon(e)) for k, e in v.items())))
    if kind == "NULL":
        return ("NULL", True)
    return (kind, v)


def canon_key(key: dict) -> tuple:
    return tuple(sorted((k, canon(v)) for k, v in key.items()))


def to_boto(av):
    """Wire AttributeValue (binary as base64 text) -> the form boto3 expects (bytes)."""
    if not isinstance(av, dict) or len(av) != 1:
        return av
    (kind, v), = av.items()
    if kind == "B":
        return {"B": _canon_bytes(v)}
    if kind == "BS":
        return {"BS": [_canon_bytes(e) for e in v]}
    if kind == "L":
        return {"L": [to_boto(e) for e in v]}
    if kind == "M":
        return {"M": {k: to_boto(e) for k, e in v.items()}}
    return av


def to_boto_item(item: dict | None) -> dict | None:
    if item is None:
        return None
    return {k: to_boto(v) for k, v in item.items()}


# --------------------------------------------------------------------------------------
# Table metadata
# --------------------------------------------------------------------------------------


class IndexInfo:
    def __init__(self, name: str, keys: list[str], projection: str, non_key: list[str], is_global: bool):
        self.name = name
        self.keys = keys
        self.projection = projection
        self.non_key = non_key
        self.is_global = is_global

    def projected_names(self, table_keys: list[str]) -> set[str] | None:
        """Attribute names in an index entry; None means the whole item (ALL)."""
        if self.projection == "ALL":
            return None
        names = set(table_keys) | set(self.keys)
        if self.projection == "INCLUDE":
            names |= set(self.non_key)
        return names

    def contains(self, item: dict | None) -> bool:
        # A (sparse) index holds an item only when the item has all the index key attributes.
        return item is not None and all(k in item for k in self.keys)

    def project(self, item: dict, table_keys: list[str]) -> dict:
        names = self.projected_names(table_keys)
        if names is None:
            return item
        return {k: v for k, v in item.items() if k in names}

    def entry_size(self, item: dict, table_keys: list[str]) -> int:
        return item_size(self.project(item, table_keys))


class TableInfo:
    def __init__(self, name: str, keys: list[str], indexes: list[IndexInfo]):
        self.name = name
        self.keys = keys
        self.indexes = indexes

    @classmethod
    def from_description(cls, desc: dict) -> "TableInfo":
        keys = [k["AttributeName"] for k in desc.get("KeySchema", [])]
        indexes = []
        for field, is_global in (("GlobalSecondaryIndexes", True), ("LocalSecondaryIndexes", False)):
            for ix in desc.get(field, []) or []:
                proj = ix.get("Projection", {}) or {}
                indexes.append(
                    IndexInfo(
                        ix["IndexName"],
                        [k["AttributeName"] for k in ix.get("KeySchema", [])],
                        proj.get("ProjectionType", "ALL"),
                        list(proj.get("NonKeyAttributes", []) or []),
                        is_global,
                    )
                )
        return cls(desc.get("TableName", ""), keys, indexes)

    def index(self, name: str | None) -> IndexInfo | None:
        if not name:
            return None
        for ix in self.indexes:
            if ix.name == name:
                return ix
        return None

    def key_of(self, item: dict) -> dict:
        return {k: item[k] for k in self.keys if k in item}


def table_name_of(name: str) -> str:
    """TableName may be an ARN (arn:aws:dynamodb:region:acct:table/Name)."""
    if name and name.startswith("arn:") and "table/" in name:
        return name.split("table/", 1)[1].split("/", 1)[0]
    return name


def index_write_cost(ix: IndexInfo, table_keys: list[str], before: dict | None, after: dict | None) -> int:
    """Write units one table write costs on one secondary index (GSI.Writes rules)."""
    in_before = ix.contains(before)
    in_after = ix.contains(after)
    if not in_before and not in_after:
        return 0  # not in the index before or after: no index write
    if in_after and not in_before:
        return write_units(ix.entry_size(after, table_keys))  # put into the index
    if in_before and not in_after:
        return write_units(ix.entry_size(before, table_keys))  # delete from the index
    if any(canon(before[k]) != canon(after[k]) for k in ix.keys):
        # Index key value changed: delete the old entry and put the new one.
        return write_units(ix.entry_size(before, table_keys)) + write_units(ix.entry_size(after, table_keys))
    pb = ix.project(before, table_keys)
    pa = ix.project(after, table_keys)
    if canon_key(pb) == canon_key(pa):
        return 0  # nothing projected changed: no index write
    return write_units(max(item_size(pb), item_size(pa)))


# --------------------------------------------------------------------------------------
# Upstream helper calls (boto3, not counted)
# --------------------------------------------------------------------------------------

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/")


class Caller:
    """Region and access key of the client, from its SigV4 Authorization header."""

    def __init__(self, headers):
        auth = headers.get("Authorization", "") or ""
        m = _CRED_RE.search(auth)
        self.akid = m.group(1) if m else "testing"
        self.region = m.group(2) if m else "us-east-1"

    def key(self):
        return (self.region, self.akid)


class Upstream:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._clients: dict = {}
        self._lock = threading.Lock()
        self._tables: dict = {}

    def client(self, service: str, caller: Caller):
        key = (service,) + caller.key()
        c = self._clients.get(key)
        if c is not None:
            return c
        with self._lock:
            c = self._clients.get(key)
            if c is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(
                    aws_access_key_id=caller.akid,
                    aws_secret_access_key="pricing-proxy-dummy-secret",
                    region_name=caller.region,
                )
                c = session.client(
                    service,
                    endpoint_url=self.url,
                    config=Config(
                        retries={"max_attempts": 3, "mode": "standard"},
                        max_pool_connections=64,
                        connect_timeout=10,
                        read_timeout=120,
                    ),
                )
                self._clients[key] = c
        return c

    # ---- table metadata, cached per table name, invalidated by Create/Update/DeleteTable
    def table(self, caller: Caller, name: str) -> TableInfo | None:
        name = table_name_of(name)
        key = caller.key() + (name,)
        info = self._tables.get(key)
        if info is not None:
            return info
        desc = self.client("dynamodb", caller).describe_table(TableName=name)["Table"]
        info = TableInfo.from_description(desc)
        with self._lock:
            self._tables[key] = info
        return info

    def invalidate_table(self, name: str | None):
        with self._lock:
            if name is None:
                self._tables.clear()
                return
            name = table_name_of(name)
            for k in [k for k in self._tables if k[-1] == name]:
                del self._tables[k]

    # ---- items, strongly consistent, in boto3 form
    def get_item(self, caller: Caller, table: str, key: dict) -> dict | None:
        out = self.client("dynamodb", caller).get_item(
            TableName=table_name_of(table), Key=to_boto_item(key), ConsistentRead=True
        )
        return out.get("Item")

    def get_items(self, caller: Caller, table: str, keys: list[dict], info: TableInfo) -> dict:
        """canon_key -> item (missing keys absent). BatchGetItem in chunks of 100."""
        found: dict = {}
        unique = {canon_key(k): k for k in keys}
        pending = list(unique.values())
        client = self.client("dynamodb", caller)
        name = table_name_of(table)
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request = {name: {"Keys": [to_boto_item(k) for k in chunk], "ConsistentRead": True}}
            for _ in range(10):
                out = client.batch_get_item(RequestItems=request)
                for it in out.get("Responses", {}).get(name, []):
                    found[canon_key(info.key_of(it))] = it
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)
            else:
                # Give up on batching: one GetItem per remaining key.
                for k in request.get(name, {}).get("Keys", []):
                    it = client.get_item(TableName=name, Key=k, ConsistentRead=True).get("Item")
                    if it is not None:
                        found[canon_key(info.key_of(it))] = it
        return found


# --------------------------------------------------------------------------------------
# Per-item locks, so that the before/after images of a write are not interleaved with
# another write to the same item through this proxy
# --------------------------------------------------------------------------------------


class StripedLocks:
    def __init__(self, n: int = 1024):
        self._locks = [threading.Lock() for _ in range(n)]

    def acquire(self, names: list) -> list:
        idx = sorted({hash(n) % len(self._locks) for n in names})
        for i in idx:
            self._locks[i].acquire()
        return idx

    def release(self, idx: list):
        for i in reversed(idx):
            self._locks[i].release()


# --------------------------------------------------------------------------------------
# Counters
# --------------------------------------------------------------------------------------


def _new_op():
    return {"calls": 0, "wcu": 0.0, "wcu_table": 0.0, "wcu_index": 0.0, "rcu": 0.0, "errors": 0}


class Stats:
    def __init__(self, log_size: int = 10000):
        self._lock = threading.Lock()
        self._log_size = log_size
        self.reset()

    def reset(self):
        with self._lock:
            self.started = time.time()
            self.ddb = {
                "calls": 0,
                "wcu": 0.0,
                "wcu_table": 0.0,
                "wcu_index": 0.0,
                "rcu": 0.0,
                "conditional_check_failed": 0,
                "transactions_cancelled": 0,
                "wcu_cancelled_transactions": 0.0,
                "accounting_errors": 0,
            }
            self.ddb_ops = collections.defaultdict(_new_op)
            self.ddb_tables = collections.defaultdict(lambda: {"wcu": 0.0, "wcu_table": 0.0, "wcu_index": 0.0, "rcu": 0.0})
            self.ddb_indexes = collections.defaultdict(lambda: {"wcu": 0.0, "rcu": 0.0})
            self.streams = {"calls": 0, "get_records": 0, "records": 0, "by_op": collections.Counter()}
            self.sqs = {"calls": 0, "requests": 0, "by_op": collections.defaultdict(lambda: {"calls": 0, "requests": 0, "messages": 0})}
            self.other = 0
            self.other_by_target = collections.Counter()
            self.log = collections.deque(maxlen=self._log_size)

    def record_ddb(self, op: str, *, status: int, tables: dict, indexes: dict, note: str = "", sizes=None,
                   cancelled: bool = False, cond_failed: bool = False, error: bool = False, accounting_error: bool = False):
        """tables: {table: {"wcu_table", "wcu_index", "rcu"}}, indexes: {"table/index": {"wcu", "rcu"}}."""
        wt = sum(v.get("wcu_table", 0) for v in tables.values())
        wi = sum(v.get("wcu_index", 0) for v in tables.values())
        r = sum(v.get("rcu", 0) for v in tables.values())
        with self._lock:
            d = self.ddb
            d["calls"] += 1
            d["wcu_table"] += wt
            d["wcu_index"] += wi
            d["wcu"] += wt + wi
            d["rcu"] += r
            if cond_failed:
                d["conditional_check_failed"] += 1
            if cancelled:
                d["transactions_cancelled"] += 1
                d["wcu_cancelled_transactions"] += wt + wi
            if accounting_error:
                d["accounting_errors"] += 1
            o = self.ddb_ops[op]
            o["calls"] += 1
            o["wcu_table"] += wt
            o["wcu_index"] += wi
            o["wcu"] += wt + wi
            o["rcu"] += r
            if error:
                o["errors"] += 1
            for t, v in tables.items():
                bt = self.ddb_tables[t]
                bt["wcu_table"] += v.get("wcu_table", 0)
                bt["wcu_index"] += v.get("wcu_index", 0)
                bt["wcu"] += v.get("wcu_table", 0) + v.get("wcu_index", 0)
                bt["rcu"] += v.get("rcu", 0)
            for i, v in indexes.items():
                bi = self.ddb_indexes[i]
                bi["wcu"] += v.get("wcu", 0)
                bi["rcu"] += v.get("rcu", 0)
            self.log.append({
                "t": round(time.time(), 3),
                "service": "dynamodb",
                "op": op,
                "status": status,
                "table": ",".join(sorted(tables)) or None,
                "index": ",".join(sorted(indexes)) or None,
                "wcu_table": wt,
                "wcu_index": wi,
                "wcu": wt + wi,
                "rcu": r,
                "sizes": sizes,
                "note": note or None,
            })

    def record_streams(self, op: str, status: int, records: int):
        with self._lock:
            s = self.streams
            s["calls"] += 1
            s["by_op"][op] += 1
            if op == "GetRecords":
                s["get_records"] += 1
                s["records"] += records
            self.log.append({"t": round(time.time(), 3), "service": "streams", "op": op, "status": status,
                             "records": records if op == "GetRecords" else None})

    def record_sqs(self, op: str, status: int, requests: int, messages: int, payload: int):
        with self._lock:
            self.sqs["calls"] += 1
            self.sqs["requests"] += requests
            o = self.sqs["by_op"][op]
            o["calls"] += 1
            o["requests"] += requests
            o["messages"] += messages
            self.log.append({"t": round(time.time(), 3), "service": "sqs", "op": op, "status": status,
                             "requests": requests, "messages": messages, "payload": payload})

    def record_other(self, target: str, status: int):
        with self._lock:
            self.other += 1
            self.other_by_target[target] += 1
            self.log.append({"t": round(time.time(), 3), "service": "other", "op": target, "status": status})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "since": self.started,
                "elapsed_s": round(time.time() - self.started, 3),
                "dynamodb": dict(
                    self.ddb,
                    by_op={k: dict(v) for k, v in sorted(self.ddb_ops.items())},
                    by_table={k: dict(v) for k, v in sorted(self.ddb_tables.items())},
                    by_index={k: dict(v) for k, v in sorted(self.ddb_indexes.items())},
                ),
                "streams": {
                    "calls": self.streams["calls"],
                    "get_records": self.streams["get_records"],
                    "records": self.streams["records"],
                    "by_op": dict(sorted(self.streams["by_op"].items())),
                },
                "sqs": {
                    "calls": self.sqs["calls"],
                    "requests": self.sqs["requests"],
                    "messages": {
                        "sent": sum(v["messages"] for k, v in self.sqs["by_op"].items() if k.startswith("SendMessage")),
                        "received": self.sqs["by_op"]["ReceiveMessage"]["messages"] if "ReceiveMessage" in self.sqs["by_op"] else 0,
                        "deleted": sum(v["messages"] for k, v in self.sqs["by_op"].items() if k.startswith("DeleteMessage")),
                    },
                    "by_op": {k: dict(v) for k, v in sorted(self.sqs["by_op"].items())},
                },
                "other": self.other,
                "other_by_target": dict(self.other_by_target),
            }

    def tail(self, n: int) -> list:
        with self._lock:
            items = list(self.log)
        return items[-n:] if n > 0 else []


# --------------------------------------------------------------------------------------
# DynamoDB accounting
# --------------------------------------------------------------------------------------

WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem"}
TABLE_ADMIN_OPS = {"CreateTable", "DeleteTable", "UpdateTable"}
_EXPR_TOKEN_RE = re.compile(r"[#:][A-Za-z0-9_]+")


def _error_type(body: dict | None) -> str:
    if not isinstance(body, dict):
        return ""
    t = body.get("__type") or body.get("code") or ""
    return t.rsplit("#", 1)[-1]


class Pending:
    """State carried from before a DynamoDB request is forwarded to after."""

    def __init__(self, op: str, req: dict, caller: Caller):
        self.op = op
        self.req = req
        self.caller = caller
        self.locks: list = []
        self.writes: list = []  # [(table, info, key, kind, new_item_or_None, before)]
        self.note = ""


class DynamoAccountant:
    def __init__(self, upstream: Upstream, stats: Stats):
        self.up = upstream
        self.stats = stats
        self.locks = StripedLocks()

    # ---- before forwarding --------------------------------------------------------
    def before(self, op: str, req: dict, caller: Caller) -> Pending:
        p = Pending(op, req, caller)
        if op in TABLE_ADMIN_OPS:
            return p
        writes = []  # (table, kind, key, new_item)
        if op in WRITE_OPS:
            table = req.get("TableName", "")
            info = self.up.table(caller, table)
            if op == "PutItem":
                item = req.get("Item", {})
                writes.append((table, info, info.key_of(item), "put", item))
            else:
                writes.append((table, info, req.get("Key", {}), "update" if op == "UpdateItem" else "delete", None))
        elif op == "BatchWriteItem":
            for table, reqs in (req.get("RequestItems") or {}).items():
                info = self.up.table(caller, table)
                for r in reqs:
                    if "PutRequest" in r:
                        item = r["PutRequest"].get("Item", {})
                        writes.append((table, info, info.key_of(item), "put", item))
                    elif "DeleteRequest" in r:
                        writes.append((table, info, r["DeleteRequest"].get("Key", {}), "delete", None))
        elif op == "TransactWriteItems":
            for action in req.get("TransactItems") or []:
                for kind, body in action.items():
                    table = body.get("TableName", "")
                    info = self.up.table(caller, table)
                    if kind == "Put":
                        item = body.get("Item", {})
                        writes.append((table, info, info.key_of(item), "put", item))
                    elif kind == "Update":
                        writes.append((table, info, body.get("Key", {}), "update", None))
                    elif kind == "Delete":
                        writes.append((table, info, body.get("Key", {}), "delete", None))
                    elif kind == "ConditionCheck":
                        writes.append((table, info, body.get("Key", {}), "check", None))
        if not writes:
            return p
        p.locks = self.locks.acquire([(table_name_of(t), canon_key(k)) for t, _, k, _, _ in writes])
        try:
            by_table: dict = collections.defaultdict(list)
            for t, info, k, _, _ in writes:
                by_table[t].append(k)
            befores: dict = {}
            for t, keys in by_table.items():
                info = next(w[1] for w in writes if w[0] == t)
                if len(keys) == 1:
                    it = self.up.get_item(caller, t, keys[0])
                    befores[t] = {canon_key(keys[0]): it} if it is not None else {}
                else:
                    befores[t] = self.up.get_items(caller, t, keys, info)
            for t, info, k, kind, new in writes:
                p.writes.append((t, info, k, kind, new, befores[t].get(canon_key(k))))
        except Exception:
            self.release(p)
            raise
        return p

    def release(self, p: Pending | None):
        if p is not None and p.locks:
            self.locks.release(p.locks)
            p.locks = []

    # ---- after forwarding -----------------------------------------------------------
    def after(self, p: Pending, status: int, resp: dict | None):
        op = p.op
        try:
            if op in TABLE_ADMIN_OPS:
                self.up.invalidate_table(p.req.get("TableName"))
                self.stats.record_ddb(op, status=status, tables={}, indexes={}, error=status >= 300)
                return
            handler = getattr(self, "_after_" + op, None)
            if handler is None:
                # Control-plane and other operations: counted, no capacity.
                self.stats.record_ddb(op, status=status, tables={}, indexes={}, error=status >= 300)
                return
            handler(p, status, resp)
        finally:
            self.release(p)

    def _after_write(self, p: Pending, status: int, resp: dict | None, factor: int):
        """Single writes, BatchWriteItem and TransactWriteItems."""
        err = _error_type(resp) if status >= 300 else ""
        tables: dict = collections.defaultdict(lambda: {"wcu_table": 0, "wcu_index": 0, "rcu": 0})
        indexes: dict = collections.defaultdict(lambda: {"wcu": 0, "rcu": 0})
        sizes = []
        cond_failed = err == "ConditionalCheckFailedException"
        cancelled = err == "TransactionCanceledException"
        if status < 300:
            unprocessed = set()
            for t, reqs in ((resp or {}).get("UnprocessedItems") or {}).items():
                for r in reqs:
                    if "PutRequest" in r:
                        unprocessed.add((t, "put", r["PutRequest"].get("Item") and json.dumps(r["PutRequest"]["Item"], sort_keys=True)))
                    if "DeleteRequest" in r:
                        unprocessed.add((t, "delete", canon_key(r["DeleteRequest"].get("Key", {}))))
            for t, info, k, kind, new, before in p.writes:
                tn = table_name_of(t)
                if kind == "put" and (t, "put", json.dumps(new, sort_keys=True)) in unprocessed:
                    continue
                if kind == "delete" and (t, "delete", canon_key(k)) in unprocessed:
                    continue
                if kind == "check":
                    # ConditionCheck: 2 x ceil(size / 1 KB) of the checked item, no index write.
                    sb = item_size(before)
                    tables[tn]["wcu_table"] += factor * write_units(sb)
                    sizes.append({"check": sb})
                    continue
                if kind == "put":
                    after = to_boto_item(new)
                elif kind == "delete":
                    after = None
                else:
                    after = self.up.get_item(p.caller, t, k)
                sb, sa = item_size(before), item_size(after)
                tables[tn]["wcu_table"] += factor * write_units(max(sb, sa))
                entry = {"before": sb, "after": sa}
                for ix in info.indexes:
                    c = index_write_cost(ix, info.keys, before, after)
                    if c:
                        c *= TX_INDEX_FACTOR if factor > 1 else 1
                        tables[tn]["wcu_index"] += c
                        indexes[f"{tn}/{ix.name}"]["wcu"] += c
                        entry[ix.name] = c
                sizes.append(entry)
        elif cond_failed and p.writes:
            # A failed condition still consumes the write, sized by the item as it is
            # (1 unit when the item does not exist). No index write happens.
            for t, info, k, kind, new, before in p.writes:
                sb = item_size(before)
                tables[table_name_of(t)]["wcu_table"] += write_units(sb)
                sizes.append({"before": sb})
        elif cancelled and p.writes:
            for t, info, k, kind, new, before in p.writes:
                sb = item_size(before)
                tables[table_name_of(t)]["wcu_table"] += CANCELLED_TX_FACTOR * write_units(sb)
                sizes.append({"before": sb})
        else:
            # Validation errors, throttling, missing tables...: nothing consumed.
            for t, *_ in p.writes:
                tables[table_name_of(t)]
        self.stats.record_ddb(p.op, status=status, tables=dict(tables), indexes=dict(indexes), sizes=sizes,
                              note=err, cond_failed=cond_failed, cancelled=cancelled, error=status >= 300)

    def _after_PutItem(self, p, status, resp):
        self._after_write(p, status, resp, 1)

    _after_UpdateItem = _after_PutItem
    _after_DeleteItem = _after_PutItem
    _after_BatchWriteItem = _after_PutItem

    def _after_TransactWriteItems(self, p, status, resp):
        self._after_write(p, status, resp, TX_FACTOR)

    # ---- reads ------------------------------------------------------------------------
    @staticmethod
    def _has_projection(body: dict) -> bool:
        return bool(body.get("ProjectionExpression") or body.get("AttributesToGet"))

    def _after_GetItem(self, p, status, resp):
        req = p.req
        t = table_name_of(req.get("TableName", ""))
        if status >= 300:
            self.stats.record_ddb(p.op, status=status, tables={t: {}}, indexes={}, error=True, note=_error_type(resp))
            return
        consistent = bool(req.get("ConsistentRead"))
        if self._has_projection(req):
            # A projection does not change the size DynamoDB charges for: read the whole item.
            item = self.up.get_item(p.caller, t, req.get("Key", {}))
        else:
            item = (resp or {}).get("Item")
        size = item_size(item)
        rcu = read_units(size, consistent)  # a missing item still costs 1 (or 0.5)
        self.stats.record_ddb(p.op, status=status, tables={t: {"rcu": rcu}}, indexes={},
                              sizes=[size], note="" if item else "not found")

    def _after_BatchGetItem(self, p, status, resp):
        if status >= 300:
            self.stats.record_ddb(p.op, status=status, tables={}, indexes={}, error=True, note=_error_type(resp))
            return
        resp = resp or {}
        tables: dict = {}
        sizes = []
        for t, spec in (p.req.get("RequestItems") or {}).items():
            tn = table_name_of(t)
            info = self.up.table(p.caller, t)
            keys = spec.get("Keys", [])
            unprocessed = {canon_key(k) for k in ((resp.get("UnprocessedKeys") or {}).get(t, {}) or {}).get("Keys", [])}
            keys = [k for k in keys if canon_key(k) not in unprocessed]
            consistent = bool(spec.get("ConsistentRead"))
            if self._has_projection(spec):
                found = self.up.get_items(p.caller, t, keys, info)
            else:
                found = {canon_key(info.key_of(it)): it for it in (resp.get("Responses") or {}).get(t, [])}
            rcu = 0.0
            for k in keys:
                s = item_size(found.get(canon_key(k)))
                sizes.append(s)
                rcu += read_units(s, consistent)  # each key rounded up on its own
            tables[tn] = {"rcu": rcu}
        self.stats.record_ddb(p.op, status=status, tables=tables, indexes={}, sizes=sizes)

    def _after_TransactGetItems(self, p, status, resp):
        err = _error_type(resp) if status >= 300 else ""
        tables: dict = collections.defaultdict(lambda: {"rcu": 0})
        sizes = []
        if status < 300:
            responses = (resp or {}).get("Responses") or []
            for i, action in enumerate(p.req.get("TransactItems") or []):
                get = action.get("Get", {})
                t = table_name_of(get.get("TableName", ""))
                if self._has_projection(get) or i >= len(responses):
                    item = self.up.get_item(p.caller, t, get.get("Key", {}))
                else:
                    item = responses[i].get("Item")
                s = item_size(item)
                sizes.append(s)
                tables[t]["rcu"] += TX_FACTOR * read_units(s, True)
        self.stats.record_ddb(p.op, status=status, tables=dict(tables), indexes={}, sizes=sizes,
                              note=err, cancelled=False, error=status >= 300)

    def _rerun_params(self, req: dict, op: str) -> dict:
        """The same read without filter/projection/select, to see every item it reads."""
        keep = ["TableName", "IndexName", "ExclusiveStartKey", "Limit", "ConsistentRead",
                "ScanIndexForward", "Segment", "TotalSegments", "KeyConditionExpression", "KeyConditions"]
        params = {k: req[k] for k in keep if k in req and req[k] is not None}
        if "ExclusiveStartKey" in params:
            params["ExclusiveStartKey"] = to_boto_item(params["ExclusiveStartKey"])
        if "KeyConditions" in params:
            params["KeyConditions"] = {
                name: dict(cond, AttributeValueList=[to_boto(v) for v in cond.get("AttributeValueList", [])])
                for name, cond in params["KeyConditions"].items()
            }
        # Keep only the names/values the key condition uses (DynamoDB rejects unused ones).
        used = set(_EXPR_TOKEN_RE.findall(params.get("KeyConditionExpression", "")))
        names = {k: v for k, v in (req.get("ExpressionAttributeNames") or {}).items() if k in used}
        values = {k: to_boto(v) for k, v in (req.get("ExpressionAttributeValues") or {}).items() if k in used}
        if names:
            params["ExpressionAttributeNames"] = names
        if values:
            params["ExpressionAttributeValues"] = values
        return params

    def _after_query_or_scan(self, p, status, resp):
        req = p.req
        t = table_name_of(req.get("TableName", ""))
        if status >= 300:
            self.stats.record_ddb(p.op, status=status, tables={t: {}}, indexes={}, error=True, note=_error_type(resp))
            return
        info = self.up.table(p.caller, t)
        ix = info.index(req.get("IndexName"))
        narrowed = any(req.get(k) for k in ("FilterExpression", "QueryFilter", "ScanFilter",
                                             "ProjectionExpression", "AttributesToGet"))
        narrowed = narrowed or (req.get("Select") not in (None, "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"))
        note = ""
        if narrowed:
            client = self.up.client("dynamodb", p.caller)
            params = self._rerun_params(req, p.op)
            out = client.query(**params) if p.op == "Query" else client.scan(**params)
            items = out.get("Items", [])
            note = "re-run without filter/projection"
            if (out.get("LastEvaluatedKey") is None) != ((resp or {}).get("LastEvaluatedKey") is None):
                note += "; page boundary differs from the client's"
        else:
            items = (resp or {}).get("Items", [])
        if ix is not None:
            # Index reads are sized by the index entries (the projected attributes).
            total = sum(ix.entry_size(it, info.keys) for it in items)
            consistent = bool(req.get("ConsistentRead")) and not ix.is_global
        else:
            total = sum(item_size(it) for it in items)
            consistent = bool(req.get("ConsistentRead"))
        # All the items read count as one read, rounded up to 4 KB; an empty result still
        # costs the minimum (1, or 0.5 eventually consistent), as a GetItem that finds nothing.
        rcu = read_units(total, consistent)
        indexes = {f"{t}/{ix.name}": {"rcu": rcu}} if ix is not None else {}
        self.stats.record_ddb(p.op, status=status, tables={t: {"rcu": rcu}}, indexes=indexes,
                              sizes={"items_read": len(items), "bytes": total}, note=note)

    _after_Query = _after_query_or_scan
    _after_Scan = _after_query_or_scan


# --------------------------------------------------------------------------------------
# Request classification
# --------------------------------------------------------------------------------------


def classify(headers, body: bytes) -> tuple[str, str]:
    """(service, operation): service in dynamodb, streams, sqs, other."""
    target = headers.get("X-Amz-Target", "") or ""
    if target:
        prefix, _, op = target.partition(".")
        if prefix.startswith("DynamoDBStreams_"):
            return "streams", op
        if prefix.startswith("DynamoDB_"):
            return "dynamodb", op
        if prefix == "AmazonSQS":
            return "sqs", op
        return "other", target
    ctype = (headers.get("Content-Type", "") or "").lower()
    if body and ("x-www-form-urlencoded" in ctype or body.startswith(b"Action=") or b"&Action=" in body):
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        except ValueError:
            form = {}
        action = (form.get("Action") or [""])[0]
        if action:
            # Query-protocol SQS (also what an older SDK would send).
            return "sqs", action
    return "other", target or "-"


def _decode_body(headers, data: bytes) -> bytes:
    enc = ""
    for k, v in headers:
        if k.lower() == "content-encoding":
            enc = v.lower()
    try:
        if enc == "gzip":
            return gzip.decompress(data)
        if enc == "deflate":
            return zlib.decompress(data)
    except (OSError, zlib.error):
        pass
    return data


def _json(data: bytes):
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def sqs_messages(op: str, req_body: bytes, req_json, resp_data: bytes, resp_json) -> tuple[int, int]:
    """(messages, received payload bytes) for the SQS operations that carry messages."""
    if req_json is None and req_body:
        form = urllib.parse.parse_qs(req_body.decode("utf-8", "replace"), keep_blank_values=True)
    else:
        form = None
    if op in ("SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
        if isinstance(req_json, dict):
            return len(req_json.get("Entries") or []), 0
        if form is not None:
            return sum(1 for k in form if re.fullmatch(r"[A-Za-z]+(?:\.member)?\.\d+\.Id", k)), 0
        return 0, 0
    if op in ("SendMessage", "DeleteMessage"):
        return 1, 0
    if op == "ReceiveMessage":
        if isinstance(resp_json, dict):
            msgs = resp_json.get("Messages") or []
            payload = 0
            for m in msgs:
                payload += len((m.get("Body") or "").encode("utf-8"))
                if m.get("MessageAttributes"):
                    payload += len(json.dumps(m["MessageAttributes"]).encode())
            return len(msgs), payload
        text = resp_data.decode("utf-8", "replace")
        bodies = re.findall(r"<Body>(.*?)</Body>", text, re.S)
        return text.count("<Message>"), sum(len(b.encode()) for b in bodies)
    return 0, 0


# --------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, upstream_url: str):
        super().__init__(addr, ProxyHandler)
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme not in ("http", ""):
            raise SystemExit("only http:// upstreams are supported")
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.upstream = Upstream(upstream_url)
        self.stats = Stats()
        self.ddb = DynamoAccountant(self.upstream, self.stats)


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pricing-proxy"
    timeout = 600  # idle keep-alive connections are closed after this

    def log_message(self, fmt, *args):  # quiet
        pass

    # every method is forwarded the same way
    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_DELETE(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_PATCH(self):
        self._handle()

    def do_OPTIONS(self):
        self._handle()

    # ---- plumbing -------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding", "") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, reason: str | None, headers: list, body: bytes):
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if self.command == "HEAD":
            for k, v in headers:
                if k.lower() == "content-length":
                    self.send_header(k, v)
        elif not no_body:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj):
        data = json.dumps(obj, indent=1, sort_keys=False, default=str).encode()
        self._send(status, None, [("Content-Type", "application/json")], data)

    def _upstream(self, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self, "_up_conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=300)
            self._up_conn = conn
            return conn, True
        return conn, False

    def _drop_upstream(self):
        conn = getattr(self, "_up_conn", None)
        if conn is not None:
            conn.close()
        self._up_conn = None

    def _forward(self, path: str, body: bytes):
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        for attempt in range(2):
            conn, fresh = self._upstream(fresh=attempt > 0)
            try:
                conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._drop_upstream()
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest):
                # A kept-alive upstream connection that the server had closed: retry once
                # on a new connection. A fresh connection failing is a real error.
                self._drop_upstream()
                if fresh or attempt > 0:
                    raise
            except Exception:
                self._drop_upstream()
                raise
        raise RuntimeError("unreachable")

    # ---- main entry -----------------------------------------------------------------
    def _handle(self):
        body = self._read_body()
        path = self.path
        if path.startswith("http://") or path.startswith("https://"):
            parts = urllib.parse.urlsplit(path)
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        plain = urllib.parse.urlsplit(path).path
        if plain in CONTROL_PATHS:
            return self._control(plain, path)

        srv = self.server
        service, op = classify(self.headers, body)
        req_json = _json(body) if service in ("dynamodb", "streams", "sqs") else None
        pending = None
        acct_error = ""
        if service == "dynamodb" and isinstance(req_json, dict):
            try:
                pending = srv.ddb.before(op, req_json, Caller(self.headers))
            except Exception as e:  # never let accounting break the forwarding
                acct_error = f"before: {type(e).__name__}: {e}"
                pending = None
        try:
            status, reason, headers, data = self._forward(path, body)
        except Exception as e:
            srv.ddb.release(pending)
            self._send_json(502, {"__type": "PricingProxyUpstreamError", "message": f"{type(e).__name__}: {e}"})
            return
        try:
            plain_data = _decode_body(headers, data)
            if service == "dynamodb":
                if pending is not None:
                    try:
                        srv.ddb.after(pending, status, _json(plain_data))
                    except Exception as e:
                        srv.ddb.release(pending)
                        acct_error = f"after: {type(e).__name__}: {e}"
                if pending is None or acct_error:
                    # A failed helper call is an accounting error only when the request
                    # itself succeeded (a PutItem to a missing table fails on both sides).
                    srv.stats.record_ddb(op, status=status, tables={}, indexes={}, note=acct_error or "unparsed request",
                                         accounting_error=bool(acct_error) and status < 300, error=status >= 300)
            elif service == "streams":
                rj = _json(plain_data) if op == "GetRecords" else None
                n = len((rj or {}).get("Records") or []) if isinstance(rj, dict) else 0
                srv.stats.record_streams(op, status, n)
            elif service == "sqs":
                msgs, received_payload = sqs_messages(op, body, req_json, plain_data, _json(plain_data))
                payload = max(len(body), received_payload)
                requests = max(1, math.ceil(payload / SQS_CHUNK_BYTES))
                srv.stats.record_sqs(op, status, requests, msgs, payload)
            else:
                srv.stats.record_other(op, status)
        finally:
            srv.ddb.release(pending)
        self._send(status, reason, headers, data)

    def _control(self, plain: str, path: str):
        srv = self.server
        if plain == "/__stats":
            return self._send_json(200, srv.stats.snapshot())
        if plain == "/__reset":
            srv.stats.reset()
            return self._send_json(200, {})
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        try:
            n = int((q.get("n") or ["200"])[0])
        except ValueError:
            n = 200
        return self._send_json(200, srv.stats.tail(n))


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1"), int(port or 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on (port 0: pick a free one)")
    ap.add_argument("--port-file", help="write the port listened on to this file")
    args = ap.parse_args(argv)

    try:  # the helper calls need boto3; without it every figure would be wrong
        import boto3  # noqa: F401
    except ImportError:
        print(f"pricing_proxy: boto3 is not importable by {sys.executable}; "
              "run it with the Python that has boto3 (e.g. /root/.pyenv/versions/3.11.7/bin)", file=sys.stderr)
        return 2

    server = ProxyServer(parse_listen(args.listen), args.upstream)
    host, port = server.server_address[:2]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"listening on {host}:{port}", flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
