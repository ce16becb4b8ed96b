#!/usr/bin/env python3
"""Socket.IO contract check of a running changewatch server, with a real python-socketio client.

Checks the events of contract.md §3 (queue_size, checking_now, watch_update,
watch_small_status_comment, general_stats_update, operation_result, toast, watch_deleted) and the
handshake auth, driving changes through the REST API v1 and a local fixture page.

    pip install "python-socketio[client]"
    CW_BASE_URL=http://127.0.0.1:PORT CW_API_KEY=KEY python3 socket_contract.py

The server must allow fetching 127.0.0.1 (ALLOW_PRIVATE_ADDRESSES=true) and have no dashboard
password set; the script sets one for the auth checks and removes it again at the end.
Prints `ok - <check>` per check; exit code 0 when all pass, 1 on the first failure.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid as uuidlib

import socketio

WAIT = 15.0  # upper bound of every wait, seconds

BASE = os.environ.get("CW_BASE_URL", "").rstrip("/")
KEY = os.environ.get("CW_API_KEY", "")

NUMBER = (int, float)

# Documented fields of watch_update's `watch` (contract.md §3) and their types.
WATCH_FIELDS = {
    "uuid": str,
    "checking_now": bool,
    "queued": bool,
    "unviewed": bool,
    "has_error": bool,
    "error_text": str,
    "last_checked": int,
    "last_checked_text": str,
    "last_changed_text": str,
    "history_n": int,
    "fetch_time": NUMBER,
    "paused": bool,
    "notification_muted": bool,
    "has_favicon": bool,
    "event_timestamp": NUMBER,
}


class Failed(Exception):
    pass


def ok(msg):
    print(f"ok - {msg}", flush=True)


def fail(msg):
    raise Failed(msg)


def type_ok(value, expected):
    """isinstance, except that a bool is not accepted where a number is expected."""
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def check_fields(event, data, fields):
    if not isinstance(data, dict):
        fail(f"{event}: payload is {type(data).__name__}, expected an object: {data!r}")
    for name, expected in fields.items():
        if name not in data:
            fail(f"{event}: field '{name}' missing in {json.dumps(data)}")
        if not type_ok(data[name], expected):
            fail(
                f"{event}: field '{name}' = {data[name]!r} ({type(data[name]).__name__}), "
                f"expected {expected}"
            )


# ---------------------------------------------------------------------------------------------
# Fixture page


class Page:
    body = "<html><body><p>first version</p></body></html>"
    lock = threading.Lock()


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with Page.lock:
            data = Page.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start_fixture():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def set_page(text):
    with Page.lock:
        Page.body = f"<html><body><p>{text}</p></body></html>"


# ---------------------------------------------------------------------------------------------
# REST


def rest(method, path, body=None, key=KEY, full=False):
    data = None if body is None else json.dumps(body).encode()
    headers = {"x-api-key": key}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            raw = r.read()
            status = r.status
            headers = r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
        headers = e.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return (status, parsed, headers) if full else (status, parsed)


def set_password(password):
    """Sets (or with "" removes) the dashboard password; returns the session cookie pair given."""
    status, body, headers = rest("POST", "/ui/settings/password", {"password": password}, full=True)
    if status != 204:
        fail(f"POST /ui/settings/password: expected 204, got {status} {body!r}")
    for value in headers.get_all("Set-Cookie") or []:
        pair = value.split(";", 1)[0].strip()
        if pair.split("=", 1)[-1]:
            return pair
    return None


# ---------------------------------------------------------------------------------------------
# Recording client


class Recorder:
    """A socketio.Client whose every event is recorded in arrival order."""

    def __init__(self, transport="websocket"):
        self.transport = transport
        self.events = []  # (event, data, monotonic time)
        self.cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)

    def _record(self, event, *args):
        data = args[0] if args else None
        with self.cond:
            self.events.append((event, data, time.monotonic()))
            self.cond.notify_all()

    def connect(self, **kw):
        self.connected_at = time.monotonic()
        self.sio.connect(BASE, transports=[self.transport], wait_timeout=WAIT, **kw)

    def close(self):
        # python-engineio's polling client drops its queued CLOSE packet when disconnect() is
        # called while a POST is in flight (its write loop stops once the state leaves
        # 'connected'); the session then lingers until the server's next ping, 25 s later.
        # engineioxide pings right after the handshake, so the client's PONG POST is in flight
        # during the first milliseconds: let it finish before disconnecting.
        if self.transport == "polling":
            left = getattr(self, "connected_at", 0) + 0.5 - time.monotonic()
            if left > 0:
                time.sleep(left)
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass

    def mark(self):
        with self.cond:
            return len(self.events)

    def wait_for(self, desc, event, pred=lambda d: True, start=0, timeout=WAIT):
        """First `event` at index >= start whose data satisfies pred: (index, data)."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    ev, data, _ = self.events[i]
                    if ev == event:
                        try:
                            hit = pred(data)
                        except (KeyError, TypeError, AttributeError):
                            hit = False
                        if hit:
                            return i, data
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [
                        f"{e}:{json.dumps(d)[:160]}" for e, d, _ in self.events[start:][-12:]
                    ]
                    fail(
                        f"timed out after {timeout:.0f}s waiting for {desc} "
                        f"({self.transport}); last events: {seen}"
                    )
                self.cond.wait(left)

    def all_of(self, event, start=0, pred=lambda d: True):
        with self.cond:
            return [d for e, d, _ in self.events[start:] if e == event and pred(d)]


def is_watch(u):
    return lambda d: d["watch"]["uuid"] == u


# ---------------------------------------------------------------------------------------------
# The checks


def check_connect(c, tag):
    _, q = c.wait_for("queue_size on connect", "queue_size")
    check_fields("queue_size", q, {"q_length": int, "event_timestamp": NUMBER})
    _, n = c.wait_for("checking_now on connect", "checking_now")
    check_fields("checking_now", n, {"count": int, "event_timestamp": NUMBER})
    if q["q_length"] < 0 or n["count"] < 0:
        fail(f"negative counters on connect: {q} {n}")
    ok(f"[{tag}] connect: queue_size {{q_length:int, event_timestamp}} and checking_now {{count:int, event_timestamp}}")


def watch_flow(c, fixture, tag):
    set_page(f"first version {uuidlib.uuid4()}")
    url = f"http://127.0.0.1:{fixture.server_port}/{tag}"
    start = c.mark()
    # null:// accepts every notification without sending one: the change below queues one.
    status, body = rest("POST", "/api/v1/watch", {"url": url, "title": f"socket contract {tag}",
                                                  "notification_urls": ["null://"]})
    if status != 201 or not isinstance(body, dict) or "uuid" not in body:
        fail(f"POST /api/v1/watch: expected 201 {{uuid}}, got {status} {body!r}")
    u = body["uuid"]
    ok(f"[{tag}] POST /api/v1/watch -> 201 uuid {u}")

    # queued -> checking_now -> checked, in this order.
    i_q, _ = c.wait_for(
        "watch_update queued=True", "watch_update",
        lambda d: is_watch(u)(d) and d["watch"]["queued"] is True, start)
    i_c, _ = c.wait_for(
        "watch_update checking_now=True", "watch_update",
        lambda d: is_watch(u)(d) and d["watch"]["checking_now"] is True, i_q)
    i_d, done = c.wait_for(
        "watch_update history_n=1 (first check committed)", "watch_update",
        lambda d: is_watch(u)(d) and d["watch"]["history_n"] == 1, i_c)
    ok(f"[{tag}] watch_update sequence queued=True -> checking_now=True -> history_n=1")
    w = done["watch"]
    if not (w["last_checked"] > 0 and w["last_checked_text"] == "just now"):
        fail(f"checked watch_update: expected last_checked>0 and 'just now', got "
             f"last_checked={w['last_checked']!r} last_checked_text={w['last_checked_text']!r}")
    if w["checking_now"] or w["queued"]:
        fail(f"checked watch_update still checking_now/queued: {json.dumps(w)}")
    if w["has_error"] or w["error_text"] != "":
        fail(f"checked watch_update reports an error: {w['error_text']!r}")
    if w["last_changed_text"] != "Not yet" or w["unviewed"]:
        fail(f"first check: expected last_changed_text 'Not yet', unviewed False; got "
             f"{w['last_changed_text']!r}, {w['unviewed']!r}")
    if w["fetch_time"] <= 0:
        fail(f"checked watch_update: fetch_time should be > 0, got {w['fetch_time']!r}")
    if abs(w["last_checked"] - time.time()) > 60:
        fail(f"last_checked {w['last_checked']} is not the current epoch time")
    ok(f"[{tag}] checked watch_update: last_checked>0, 'just now', fetch_time>0, no error, 'Not yet' changed")

    c.wait_for("watch_small_status_comment for the watch", "watch_small_status_comment",
               lambda d: d["uuid"] == u, start)
    for s in c.all_of("watch_small_status_comment", start, lambda d: d.get("uuid") == u):
        check_fields("watch_small_status_comment", s,
                     {"uuid": str, "status": str, "event_timestamp": NUMBER})
        bad = [ch for ch in s["status"] if not (ch.isascii() and (ch.isalnum() or ch in " ().,/:-"))]
        if bad or len(s["status"]) > 80:
            fail(f"watch_small_status_comment status not sanitised: {s['status']!r}")
    ok(f"[{tag}] watch_small_status_comment {{uuid, status, event_timestamp}}")

    _, g = c.wait_for("general_stats_update after the check", "general_stats_update", start=i_d)
    check_fields("general_stats_update", g, {"count_errors": int, "unread_changes_count": int})
    _, n = c.wait_for("checking_now after the checked watch_update", "checking_now", start=i_d)
    check_fields("checking_now", n, {"count": int, "event_timestamp": NUMBER})
    busy = [d for d in c.all_of("checking_now", i_c) if d["count"] >= 1]
    if not busy:
        fail("no checking_now with count>=1 after the watch started checking")
    ok(f"[{tag}] general_stats_update {{count_errors, unread_changes_count}} and checking_now follow watch_update")

    # recheck over the socket after the page changed -> history 2, unviewed.
    set_page(f"second version {uuidlib.uuid4()}")
    start = c.mark()
    c.sio.emit("watch_operation", {"op": "recheck", "uuid": u})
    _, r = c.wait_for("operation_result for recheck", "operation_result", start=start)
    if r != {"success": True, "operation": "recheck", "uuid": u}:
        fail(f"operation_result for recheck: expected {{success:True, operation:'recheck', uuid}}, got {r!r}")
    ok(f"[{tag}] watch_operation recheck -> operation_result {{success:True, operation:'recheck', uuid}}")
    i2, w2 = c.wait_for(
        "watch_update history_n=2 unviewed=True after recheck", "watch_update",
        lambda d: is_watch(u)(d) and d["watch"]["history_n"] == 2 and d["watch"]["unviewed"] is True,
        start)
    w2 = w2["watch"]
    if w2["last_changed_text"] == "Not yet":
        fail(f"after a change last_changed_text should be a time ago, got {w2['last_changed_text']!r}")
    ok(f"[{tag}] watch_update history_n=2 unviewed=True (last_changed_text {w2['last_changed_text']!r})")
    c.wait_for("general_stats_update unread_changes_count>=1", "general_stats_update",
               lambda d: d["unread_changes_count"] >= 1, i2)
    ok(f"[{tag}] general_stats_update unread_changes_count >= 1")
    _, ne = c.wait_for("notification_event for the change", "notification_event",
                       lambda d: d.get("watch_uuid") == u, start)
    check_fields("notification_event", ne, {"watch_uuid": str, "event_timestamp": NUMBER})
    if c.all_of("notification_event", 0, lambda d: d.get("watch_uuid") == u)[1:]:
        fail("notification_event sent more than once for one change (or for the first check)")
    ok(f"[{tag}] notification_event {{watch_uuid, event_timestamp}} once, for the change only")

    # pause is a toggle.
    start = c.mark()
    c.sio.emit("watch_operation", {"op": "pause", "uuid": u})
    _, r = c.wait_for("operation_result for pause", "operation_result", start=start)
    if r != {"success": True, "operation": "pause", "uuid": u}:
        fail(f"operation_result for pause: got {r!r}")
    c.wait_for("watch_update paused=True", "watch_update",
               lambda d: is_watch(u)(d) and d["watch"]["paused"] is True, start)
    ok(f"[{tag}] watch_operation pause -> operation_result + watch_update paused=True")
    start = c.mark()
    c.sio.emit("watch_operation", {"op": "pause", "uuid": u})
    _, r = c.wait_for("operation_result for second pause", "operation_result", start=start)
    if r.get("success") is not True:
        fail(f"second pause: got {r!r}")
    c.wait_for("watch_update paused=False (toggle back)", "watch_update",
               lambda d: is_watch(u)(d) and d["watch"]["paused"] is False, start)
    ok(f"[{tag}] watch_operation pause again toggles back: watch_update paused=False")

    # documented errors.
    missing = str(uuidlib.uuid4())
    for payload, expected in [
        ({"op": "pause"}, "Missing operation or UUID"),
        ({"uuid": u}, "Missing operation or UUID"),
        ({"op": "pause", "uuid": missing}, "Watch not found"),
        ({"op": "recheck", "uuid": missing}, "Watch not found"),
        ({"op": "explode", "uuid": u}, "Unknown operation: explode"),
    ]:
        start = c.mark()
        c.sio.emit("watch_operation", payload)
        _, r = c.wait_for(f"operation_result for {payload}", "operation_result", start=start)
        if r != {"success": False, "error": expected}:
            fail(f"watch_operation {payload}: expected {{success:False, error:{expected!r}}}, got {r!r}")
    ok(f"[{tag}] watch_operation errors: 'Missing operation or UUID', 'Watch not found', 'Unknown operation: explode'")

    # bulk mute.
    start = c.mark()
    c.sio.emit("checkbox-operation", {"op": "mute", "uuids": [u], "extra_data": ""})
    _, t = c.wait_for("toast for checkbox-operation mute", "toast", start=start)
    if t.get("message") != "1 watches muted" or t.get("type") != "success":
        fail(f"toast: expected {{message:'1 watches muted', type:'success'}}, got {t!r}")
    c.wait_for("watch_update notification_muted=True", "watch_update",
               lambda d: is_watch(u)(d) and d["watch"]["notification_muted"] is True, start)
    ok(f"[{tag}] checkbox-operation mute -> toast '1 watches muted' + watch_update notification_muted=True")

    # every watch_update seen for this watch carries every documented field with its type.
    updates = c.all_of("watch_update", 0, lambda d: isinstance(d, dict) and d.get("watch", {}).get("uuid") == u)
    for d in updates:
        check_fields("watch_update.watch", d["watch"], WATCH_FIELDS)
    for d in c.all_of("general_stats_update"):
        check_fields("general_stats_update", d, {"count_errors": int, "unread_changes_count": int})
    for d in c.all_of("checking_now"):
        check_fields("checking_now", d, {"count": int, "event_timestamp": NUMBER})
    for d in c.all_of("queue_size"):
        check_fields("queue_size", d, {"q_length": int, "event_timestamp": NUMBER})
    ok(f"[{tag}] all {len(updates)} watch_update events have every documented field with the right type")

    # a failing check: has_error, error_text, count_errors.
    if tag == "websocket":
        error_flow(c, tag)

    # delete.
    start = c.mark()
    status, body = rest("DELETE", f"/api/v1/watch/{u}")
    if status != 204:
        fail(f"DELETE /api/v1/watch/{u}: expected 204, got {status} {body!r}")
    _, d = c.wait_for("watch_deleted", "watch_deleted", lambda d: d["uuid"] == u, start)
    check_fields("watch_deleted", d, {"uuid": str, "event_timestamp": NUMBER})
    ok(f"[{tag}] DELETE via REST -> watch_deleted {{uuid, event_timestamp}}")


def closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def error_flow(c, tag):
    start = c.mark()
    status, body = rest("POST", "/api/v1/watch", {"url": f"http://127.0.0.1:{closed_port()}/gone"})
    if status != 201:
        fail(f"POST /api/v1/watch (failing URL): expected 201, got {status} {body!r}")
    e = body["uuid"]
    i, w = c.wait_for("watch_update has_error=True for a refused connection", "watch_update",
                      lambda d: is_watch(e)(d) and d["watch"]["has_error"] is True, start)
    w = w["watch"]
    check_fields("watch_update.watch", w, WATCH_FIELDS)
    if not w["error_text"].strip():
        fail(f"has_error=True but error_text is empty: {json.dumps(w)}")
    if "<script" in w["error_text"].lower():
        fail(f"error_text is not escaped: {w['error_text']!r}")
    c.wait_for("general_stats_update count_errors>=1", "general_stats_update",
               lambda d: d["count_errors"] >= 1, i)
    ok(f"[{tag}] failing check -> watch_update has_error=True, error_text {w['error_text'][:60]!r}..., count_errors>=1")
    start = c.mark()
    status, _ = rest("DELETE", f"/api/v1/watch/{e}")
    if status != 204:
        fail(f"DELETE failing watch: expected 204, got {status}")
    c.wait_for("watch_deleted for the failing watch", "watch_deleted", lambda d: d["uuid"] == e, start)
    c.wait_for("general_stats_update count_errors back to 0", "general_stats_update",
               lambda d: d["count_errors"] == 0, start)
    ok(f"[{tag}] deleting it -> watch_deleted and general_stats_update count_errors=0")


def run_flow(fixture, transport):
    c = Recorder(transport)
    try:
        try:
            c.connect()
        except socketio.exceptions.ConnectionError as e:
            fail(f"cannot connect a Socket.IO client to {BASE} over {transport}: {e}")
        if c.sio.transport() != transport:
            fail(f"connected over {c.sio.transport()!r}, expected {transport!r}")
        check_connect(c, transport)
        watch_flow(c, fixture, transport)
    finally:
        c.close()


def expect_refused(desc, transport="websocket", **kw):
    """The handshake must end in connect_error. The connect call runs in a thread: over polling,
    python-engineio's client only returns from a refused connect once its pending long-poll GET
    ends (the server's next ping, 25 s), for upstream's server as for this one; the refusal itself
    arrives at once and is what is waited for here."""
    c = Recorder(transport)
    outcome = {}
    refused = threading.Event()
    c.sio.on("connect_error", lambda data=None: (outcome.setdefault("error", data), refused.set()))
    c.sio.on("connect", lambda: (outcome.setdefault("connected", True), refused.set()))

    def attempt():
        try:
            c.connect(**kw)
        except socketio.exceptions.ConnectionError as e:
            outcome.setdefault("raised", str(e))
        except Exception as e:  # noqa: BLE001 - reported below
            outcome.setdefault("crash", f"{type(e).__name__}: {e}")
        refused.set()

    threading.Thread(target=attempt, daemon=True).start()
    if not refused.wait(WAIT):
        fail(f"auth: {desc} ({transport}): neither connected nor refused within {WAIT:.0f}s")
    if outcome.get("connected"):
        c.close()
        fail(f"auth: {desc} ({transport}) was allowed to connect with a dashboard password set")
    if "crash" in outcome:
        fail(f"auth: {desc} ({transport}): {outcome['crash']}")
    why = outcome.get("error") or outcome.get("raised")
    if isinstance(why, dict):
        why = why.get("message", why)
    if not why or "Unauthorized" not in str(why) and "failed to connect" not in str(why):
        fail(f"auth: {desc} ({transport}): unexpected refusal {outcome!r}")
    ok(f"auth: {desc} ({transport}) refused: {why}")


def expect_allowed(desc, transport="websocket", **kw):
    c = Recorder(transport)
    try:
        try:
            c.connect(**kw)
        except socketio.exceptions.ConnectionError as e:
            fail(f"auth: {desc} ({transport}) refused: {e}")
        c.wait_for(f"queue_size after connecting with {desc}", "queue_size")
        ok(f"auth: {desc} ({transport}) connects and receives queue_size")
    finally:
        c.close()


def run_auth():
    cookie = set_password("socket-contract-pw")
    ok("auth: dashboard password set (POST /ui/settings/password -> 204)")
    try:
        expect_refused("no credentials")
        expect_refused("no credentials", transport="polling")
        expect_refused("wrong auth api_key", auth={"api_key": KEY + "-wrong"})
        expect_refused("wrong x-api-key header", headers={"x-api-key": KEY + "-wrong"})
        expect_refused("forged session cookie", headers={"Cookie": "changewatch_session=9999999999.00"})
        expect_allowed("auth={'api_key': key}", auth={"api_key": KEY})
        expect_allowed("auth={'api_key': key}", transport="polling", auth={"api_key": KEY})
        expect_allowed("x-api-key header", headers={"x-api-key": KEY})
        if cookie:
            expect_allowed("dashboard session cookie", headers={"Cookie": cookie})
        else:
            fail("POST /ui/settings/password set no session cookie")
    finally:
        set_password("")
    ok("auth: password removed again (password '')")
    expect_allowed("no credentials after the password was removed")


def main():
    if not BASE or not KEY:
        print("CW_BASE_URL and CW_API_KEY must be set", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    fixture = start_fixture()
    try:
        run_flow(fixture, "websocket")
        run_flow(fixture, "polling")
        run_auth()
    except Failed as e:
        print(f"not ok - {e}", flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - report any crash as a failure, with its type
        print(f"not ok - unexpected {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        fixture.shutdown()
    print(f"# all socket contract checks passed in {time.monotonic() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
