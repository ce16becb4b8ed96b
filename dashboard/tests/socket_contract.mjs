// The Socket.IO contract (upstream changedetection.io's realtime events) checked with the real
// socket.io-client against a running changewatch: connect events, a watch going
// queued -> checking -> checked -> changed, row and bulk operations, deletion, and the handshake
// auth with and without a dashboard password.
//
// Env: CW_BASE_URL (the server), CW_API_KEY. Starts its own fixture page server on loopback.
// Exit 0 when every check passes; prints `ok - ...` per check.

import http from "node:http";
import { io } from "socket.io-client";

const BASE = process.env.CW_BASE_URL;
const KEY = process.env.CW_API_KEY;
if (!BASE || !KEY) {
  console.error("CW_BASE_URL and CW_API_KEY are required");
  process.exit(2);
}
const WAIT_MS = 15000;

// --- fixture page server -------------------------------------------------------------------
let pageBody = "<html><head><title>Socket fixture</title></head><body><p>Price: 10</p></body></html>";
const fixture = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(pageBody);
});
await new Promise((r) => fixture.listen(0, "127.0.0.1", r));
const pageUrl = `http://127.0.0.1:${fixture.address().port}/page`;

// --- helpers --------------------------------------------------------------------------------
const sockets = [];

function ok(what) {
  console.log(`ok - ${what}`);
}

function fail(msg) {
  throw new Error(msg);
}

async function rest(method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { "x-api-key": KEY, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

// A client that records every event, so a test can wait for one that already arrived.
function client(opts = {}) {
  const s = io(BASE, { transports: ["websocket"], reconnection: false, forceNew: true, ...opts });
  s.log = [];
  s.onAny((event, data) => s.log.push({ event, data }));
  sockets.push(s);
  return s;
}

function connected(s) {
  return new Promise((resolve, reject) => {
    if (s.connected) return resolve();
    const t = setTimeout(() => reject(new Error("connect timed out")), WAIT_MS);
    s.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function refused(s) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("neither refused nor connected")), WAIT_MS);
    s.once("connect", () => {
      clearTimeout(t);
      reject(new Error("connected but should have been refused"));
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      resolve(e);
    });
  });
}

// Waits for an event matching `pred`, looking at what already arrived first.
async function waitFor(s, event, pred = () => true, what = event) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const hit = s.log.find((e) => e.event === event && pred(e.data));
    if (hit) return hit.data;
    if (Date.now() > deadline) {
      const seen = s.log.filter((e) => e.event === event).slice(-5);
      fail(`timed out waiting for ${what}; last ${event} events: ${JSON.stringify(seen)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function expectTypes(obj, spec, what) {
  for (const [field, type] of Object.entries(spec)) {
    if (!(field in obj)) fail(`${what}: missing field ${field} in ${JSON.stringify(obj)}`);
    const v = obj[field];
    const actual = v === null ? "null" : typeof v;
    if (!type.split("|").includes(actual)) {
      fail(`${what}: ${field} is ${actual} (${JSON.stringify(v)}), expected ${type}`);
    }
  }
}

function eq(a, b, what) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    fail(`${what}: got ${JSON.stringify(a)}, expected ${JSON.stringify(b)}`);
  }
}

const WATCH_FIELDS = {
  uuid: "string",
  checking_now: "boolean",
  queued: "boolean",
  unviewed: "boolean",
  has_error: "boolean",
  error_text: "string",
  last_checked: "number",
  last_checked_text: "string",
  last_changed_text: "string",
  history_n: "number",
  fetch_time: "number",
  paused: "boolean",
  notification_muted: "boolean",
  has_favicon: "boolean",
  event_timestamp: "number",
};

// --- the scenario ---------------------------------------------------------------------------
async function main() {
  const a = client();
  const b = client({ transports: ["polling"] }); // a second client, over long-polling
  await Promise.all([connected(a), connected(b)]);
  for (const s of [a, b]) {
    expectTypes(await waitFor(s, "queue_size"), { q_length: "number", event_timestamp: "number" }, "queue_size");
    expectTypes(await waitFor(s, "checking_now"), { count: "number", event_timestamp: "number" }, "checking_now");
  }
  ok("connect sends queue_size and checking_now to each socket (websocket and polling)");

  const created = await rest("POST", "/api/v1/watch", { url: pageUrl });
  eq(created.status, 201, "create watch");
  const uuid = created.json.uuid;
  const mine = (d) => d?.watch?.uuid === uuid;

  const queued = await waitFor(a, "watch_update", (d) => mine(d) && d.watch.queued, "watch_update queued");
  expectTypes(queued.watch, WATCH_FIELDS, "watch_update");
  await waitFor(a, "queue_size", (d) => d.q_length >= 1, "queue_size counting the job");
  const checking = await waitFor(a, "watch_update", (d) => mine(d) && d.watch.checking_now, "watch_update checking");
  eq(checking.watch.queued, false, "taken off the queue while checking");
  await waitFor(a, "checking_now", (d) => d.count >= 1, "checking_now counting the check");
  const comment = await waitFor(a, "watch_small_status_comment", (d) => d.uuid === uuid);
  expectTypes(comment, { uuid: "string", status: "string", event_timestamp: "number" }, "watch_small_status_comment");
  const checked = await waitFor(a, "watch_update", (d) => mine(d) && d.watch.history_n === 1, "first check");
  eq(checked.watch.checking_now, false, "checking_now after the check");
  if (!(checked.watch.last_checked > 0)) fail("last_checked set after the check");
  eq(checked.watch.last_checked_text, "just now", "last_checked_text");
  eq(checked.watch.last_changed_text, "Not yet", "a baseline is not a change");
  eq(checked.watch.unviewed, false, "a baseline is not unviewed");
  expectTypes(await waitFor(a, "general_stats_update"), { count_errors: "number", unread_changes_count: "number" }, "general_stats_update");
  await waitFor(b, "watch_update", (d) => mine(d) && d.watch.history_n === 1, "the other client's copy");
  ok("watch goes queued -> checking -> checked with every documented field, to every client");

  pageBody = pageBody.replace("Price: 10", "Price: 11");
  a.log.length = 0;
  a.emit("watch_operation", { op: "recheck", uuid });
  eq(await waitFor(a, "operation_result"), { operation: "recheck", success: true, uuid }, "recheck result");
  const changed = await waitFor(a, "watch_update", (d) => mine(d) && d.watch.history_n === 2, "the change");
  eq(changed.watch.unviewed, true, "a change is unviewed");
  await waitFor(a, "general_stats_update", (d) => d.unread_changes_count >= 1, "unread counter");
  ok("watch_operation recheck -> operation_result, change seen as unviewed, unread counted");

  a.log.length = 0;
  a.emit("watch_operation", { op: "mute", uuid });
  eq(await waitFor(a, "operation_result"), { operation: "mute", success: true, uuid }, "mute result");
  await waitFor(a, "watch_update", (d) => mine(d) && d.watch.notification_muted === true, "muted row");
  a.log.length = 0;
  a.emit("watch_operation", { op: "mute", uuid });
  // Its reply too: the row's update can come before it, and a reply still in flight would be
  // taken for the next operation's.
  eq(await waitFor(a, "operation_result"), { operation: "mute", success: true, uuid }, "second mute result");
  await waitFor(a, "watch_update", (d) => mine(d) && d.watch.notification_muted === false, "mute toggles back");
  ok("watch_operation mute toggles");

  for (const [payload, error] of [
    [{}, "Missing operation or UUID"],
    [{ op: "pause", uuid: "00000000-0000-4000-8000-000000000000" }, "Watch not found"],
    [{ op: "explode", uuid }, "Unknown operation: explode"],
  ]) {
    a.log.length = 0;
    a.emit("watch_operation", payload);
    eq(await waitFor(a, "operation_result"), { error, success: false }, `error for ${JSON.stringify(payload)}`);
  }
  ok("watch_operation errors are upstream's");

  a.log.length = 0;
  a.emit("checkbox-operation", { op: "pause", uuids: [uuid] });
  eq(await waitFor(a, "toast"), { message: "1 watches paused", type: "success" }, "pause toast");
  await waitFor(a, "watch_update", (d) => mine(d) && d.watch.paused === true, "paused row");
  a.log.length = 0;
  a.emit("checkbox-operation", { op: "mark-viewed", uuids: [uuid] });
  eq(await waitFor(a, "toast"), { message: "1 watches updated", type: "success" }, "mark-viewed toast");
  await waitFor(a, "watch_update", (d) => mine(d) && d.watch.unviewed === false, "viewed row");
  await waitFor(a, "general_stats_update", (d) => d.unread_changes_count === 0, "unread counter back to 0");
  a.log.length = 0;
  a.emit("checkbox-operation", { op: "set-proxy", uuids: [uuid], extra_data: "nowhere" });
  eq(await waitFor(a, "toast"), { message: "Invalid proxy selected", type: "error" }, "bad proxy toast");
  ok("checkbox-operation -> toast and live rows");

  const del = await rest("DELETE", `/api/v1/watch/${uuid}`);
  eq(del.status, 204, "delete");
  const gone = await waitFor(b, "watch_deleted", (d) => d.uuid === uuid);
  expectTypes(gone, { uuid: "string", event_timestamp: "number" }, "watch_deleted");
  ok("watch_deleted");

  // --- handshake auth -----------------------------------------------------------------------
  const pw = await rest("POST", "/ui/settings/password", { password: "pa55word" });
  eq(pw.status, 204, "set a dashboard password");
  try {
    await refused(client());
    ok("with a password, a handshake without credentials is refused");
    await refused(client({ auth: { api_key: "wrong" } }));
    ok("a wrong API key is refused");
    await connected(client({ auth: { api_key: KEY } }));
    ok("auth: {api_key} is accepted");
    await connected(client({ extraHeaders: { "x-api-key": KEY } }));
    ok("the x-api-key header is accepted");
    const login = await fetch(BASE + "/ui/login", {
      method: "POST",
      headers: { "x-changewatch-ui": "1", "content-type": "application/json" },
      body: JSON.stringify({ password: "pa55word" }),
    });
    eq(login.status, 200, "dashboard login");
    const cookie = (login.headers.get("set-cookie") || "").split(";")[0];
    await connected(client({ extraHeaders: { cookie } }));
    ok("the dashboard session cookie is accepted");
  } finally {
    const off = await rest("POST", "/ui/settings/password", { password: "" });
    eq(off.status, 204, "remove the password");
  }
  await connected(client());
  ok("without a password any client connects again");
}

let code = 0;
try {
  await main();
  console.log("socket contract: all checks passed");
} catch (e) {
  console.error(`not ok - ${e.message}`);
  code = 1;
} finally {
  for (const s of sockets) s.close();
  fixture.close();
}
process.exit(code);
