// Socket.IO fan-out benchmark: N clients connected to one server; one watch's pause state is
// toggled R times; each round is timed from the trigger until every one of the N clients has
// received the `watch_update` carrying the new state. Also the server's RSS before and after the
// N connections (from /proc/<pid>/status) and its CPU time over the rounds.
//
// Latency phase (--recheck-rounds K, default 100; 0 skips it): the watch's page is a ~46 KB news
// page whose prices change on every fetch, so every recheck is a changed check. K rechecks with
// only the controller connected (recheck -> the `watch_update` that completes the check, as the
// controller sees it: `check_*`), then K more with the N clients connected: when the first and
// the last of them had the completing update (`fanout_*` = last - first, the time to serve all N
// after the check; `check_all_*` = recheck -> last client). Completing = `checking_now` false and
// `history_n` above the value before the recheck.
//
// Works against changewatch and against upstream changedetection.io (Flask-SocketIO): both serve
// REST API v1 and the same Socket.IO events. Loopback only; every wait is bounded.
//
//   node bench/socket_load.mjs --url http://127.0.0.1:PORT --key API_KEY --pid SERVER_PID \
//        [--n 500] [--rounds 50] [--recheck-rounds 100] [--trigger socket|rest] [--label name]
//        [--json out.json]
//
// --trigger socket (default): a separate controller client sends `watch_operation
//   {op:'pause', uuid}` (a toggle), which both servers answer with a broadcast `watch_update`.
// --trigger rest: `GET /api/v1/watch/<uuid>?paused=paused|unpaused`. changewatch broadcasts a
//   watch_update for it; upstream 0.60.x does not (its API pause only commits), so this trigger
//   is for changewatch only.
//
// socket.io-client is taken from dashboard/node_modules (or SOCKET_IO_CLIENT=<dir of the package>).

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "dashboard", "package.json"));
const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client");

// ----------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    url: process.env.CW_BASE_URL || "",
    key: process.env.CW_API_KEY || "",
    pid: 0,
    n: 500,
    rounds: 50,
    recheckRounds: 100,
    trigger: "socket",
    label: "server",
    json: "",
    batch: 25,
    gapMs: 100,
    roundTimeoutMs: 15000,
    settleMs: 2000,
    deleteOtherWatches: false,
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--url": o.url = v(); break;
      case "--key": o.key = v(); break;
      case "--pid": o.pid = Number(v()); break;
      case "--n": o.n = Number(v()); break;
      case "--rounds": o.rounds = Number(v()); break;
      case "--recheck-rounds": o.recheckRounds = Number(v()); break;
      case "--trigger": o.trigger = v(); break;
      case "--label": o.label = v(); break;
      case "--json": o.json = v(); break;
      case "--batch": o.batch = Number(v()); break;
      case "--gap-ms": o.gapMs = Number(v()); break;
      case "--round-timeout-ms": o.roundTimeoutMs = Number(v()); break;
      case "--settle-ms": o.settleMs = Number(v()); break;
      case "--delete-other-watches": o.deleteOtherWatches = true; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  o.url = o.url.replace(/\/+$/, "");
  const u = new URL(o.url);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname) && !u.hostname.startsWith("127.")) {
    throw new Error(`refusing a non-loopback target ${u.hostname}: this benchmark is for loopback only`);
  }
  if (!o.key) throw new Error("--key (or CW_API_KEY) is required");
  if (!Number.isInteger(o.n) || o.n < 1 || o.n > 2000) throw new Error("--n must be 1..2000");
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 1000) throw new Error("--rounds must be 1..1000");
  if (!Number.isInteger(o.recheckRounds) || o.recheckRounds < 0 || o.recheckRounds > 1000) throw new Error("--recheck-rounds must be 0..1000");
  if (!["socket", "rest"].includes(o.trigger)) throw new Error("--trigger is socket or rest");
  return o;
}

// ----------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function rssKb(pid) {
  if (!pid) return null;
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) : null;
}

function threads(pid) {
  if (!pid) return null;
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^Threads:\s+(\d+)/m);
  return m ? Number(m[1]) : null;
}

// utime + stime of the process, in clock ticks (USER_HZ is 100 on Linux).
function cpuTicks(pid) {
  if (!pid) return null;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

async function api(o, method, p, body) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 15000);
  try {
    const r = await fetch(o.url + p, {
      method,
      headers: { "x-api-key": o.key, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: ctl.signal,
    });
    const text = await r.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, data };
  } finally {
    clearTimeout(timer);
  }
}

const WORDS = ("market city council report weather river school festival budget vote station museum " +
  "harbour league season transport housing energy garden library bridge election review").split(" ");

// A news front page of ~46 KB (the shape of bench/serve_compare.py's pages): 60 stories with
// prices; `version` moves every 7th story's price, as a real edit would.
function newsPage(version) {
  let seed = 7;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const word = () => WORDS[rnd(WORDS.length)];
  const parts = [
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Daily</title>",
    "<style>body{font-family:sans-serif}.ad{color:red}</style></head><body><nav><ul>",
  ];
  for (let k = 0; k < 12; k++) parts.push(`<li><a href='/s/${k}'>Section ${k}</a></li>`);
  parts.push("</ul></nav><main>");
  for (let k = 0; k < 60; k++) {
    const words = Array.from({ length: 76 }, word).join(" ");
    const price = 5 + rnd(496) + (k % 7 === 0 ? version : 0);
    parts.push(`<article id='s${k}'><h2><a href='/story/${k}'>Story ${k}: ${word()} ${word()}</a></h2>` +
      `<p class='meta'>By Reporter ${k % 9} · <time>2026-12-0${1 + (k % 5)}</time></p><p>${words}.</p>` +
      `<p class='price'>Price: $${price}.00</p></article>`);
    if (k % 10 === 5) parts.push(`<div class='ad'><img src='/ad/${k}.png' alt='ad'>Buy now ${k}</div>`);
  }
  parts.push("</main><footer><p>© Daily</p></footer></body></html>");
  return parts.join("");
}

// Every fetch gets the next version: each check is a changed check.
function startFixture() {
  let version = 0;
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(newsPage(++version));
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

function connectOne(o, i) {
  return new Promise((resolve, reject) => {
    const s = io(o.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: 20000,
    });
    const t = setTimeout(() => { s.close(); reject(new Error(`client ${i}: connect timed out`)); }, 30000);
    s.once("connect", () => { clearTimeout(t); resolve(s); });
    s.once("connect_error", (e) => { clearTimeout(t); s.close(); reject(new Error(`client ${i}: ${e.message}`)); });
  });
}

// One recheck of the watch, timed until every socket in `listeners` has had the update that
// completes it (checking_now false, history_n above `h0`). Returns the times after the trigger
// of the first and the last of them (null when none had it within the round's timeout).
async function recheckRound(o, uuid, controller, listeners, h0) {
  const times = new Array(listeners.length).fill(null);
  let count = 0;
  let history = h0;
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  const handlers = listeners.map((s, idx) => {
    const h = (data) => {
      const w = data && data.watch;
      if (!w || w.uuid !== uuid || w.checking_now !== false || !(w.history_n > h0) || times[idx] !== null) return;
      times[idx] = now();
      history = Math.max(history, w.history_n);
      if (++count === listeners.length) resolve();
    };
    s.on("watch_update", h);
    return h;
  });
  const timer = setTimeout(resolve, o.roundTimeoutMs);
  const t0 = now();
  if (o.trigger === "socket") {
    controller.emit("watch_operation", { op: "recheck", uuid });
  } else {
    const res = await api(o, "GET", `/api/v1/watch/${uuid}?recheck=1`);
    if (res.status !== 200) throw new Error(`recheck: ${res.status} ${JSON.stringify(res.data)}`);
  }
  await done;
  clearTimeout(timer);
  listeners.forEach((s, idx) => s.off("watch_update", handlers[idx]));
  let first = null;
  let last = null;
  for (const t of times) {
    if (t === null) continue;
    first = first === null ? t : Math.min(first, t);
    last = last === null ? t : Math.max(last, t);
  }
  return {
    count,
    first: first === null ? null : first - t0,
    last: last === null ? null : last - t0,
    history,
  };
}

// K rechecks, one after the other; the sorted figures and how many rounds fell short.
async function recheckPhase(o, uuid, controller, listeners, h0, log, name) {
  const firsts = [];
  const lasts = [];
  const spreads = [];
  let incomplete = 0;
  let h = h0;
  for (let r = 0; r < o.recheckRounds; r++) {
    const rd = await recheckRound(o, uuid, controller, listeners, h);
    h = rd.history;
    if (rd.count < listeners.length) {
      incomplete++;
      log(`${name} recheck ${r}: ${rd.count}/${listeners.length} had the completing update within ${o.roundTimeoutMs} ms`);
      if (rd.count === 0) break;
    } else {
      firsts.push(rd.first);
      lasts.push(rd.last);
      spreads.push(rd.last - rd.first);
    }
    await sleep(o.gapMs);
  }
  const sort = (a) => [...a].sort((x, y) => x - y);
  return { first: sort(firsts), last: sort(lasts), spread: sort(spreads), incomplete, history: h };
}

const fig = (sorted, p) => (sorted.length ? +pct(sorted, p).toFixed(2) : null);

// ----------------------------------------------------------------------------------------------
// The run

async function main() {
  const o = parseArgs(process.argv);
  const log = (...a) => console.error(`[${o.label}]`, ...a);

  const fixture = await startFixture();
  const pageUrl = `http://127.0.0.1:${fixture.address().port}/page`;

  if (o.deleteOtherWatches) {
    // Fresh datastores only: upstream seeds example watches whose checks would add events.
    const list = await api(o, "GET", "/api/v1/watch");
    for (const id of Object.keys(list.data || {})) await api(o, "DELETE", `/api/v1/watch/${id}`);
  }

  // One watch, checked once (so no check is due during the rounds).
  const created = await api(o, "POST", "/api/v1/watch", { url: pageUrl, title: "socket fan-out bench" });
  if (created.status !== 201 && created.status !== 200) throw new Error(`create watch: ${created.status} ${JSON.stringify(created.data)}`);
  const uuid = created.data.uuid;
  let watch;
  const checkDeadline = now() + 30000;
  for (;;) {
    watch = (await api(o, "GET", `/api/v1/watch/${uuid}`)).data;
    if (watch && watch.last_checked > 0) break;
    if (now() > checkDeadline) throw new Error("the benchmark watch was not checked within 30 s");
    await sleep(200);
  }
  let paused = Boolean(watch.paused);

  // Warm-up, the same for every server: a few clients connect, see two toggles and leave, so
  // one-off costs (thread pools, caches, first allocations) are not counted per connection.
  {
    const warm = [];
    for (let j = 0; j < Math.min(o.n, o.batch); j++) warm.push(connectOne(o, `warm-up ${j}`));
    const ws = await Promise.all(warm);
    for (let k = 0; k < 2; k++) {
      const expect = !paused;
      const got = new Promise((resolve) => {
        const t = setTimeout(resolve, o.roundTimeoutMs);
        ws[0].on("watch_update", (d) => {
          if (d && d.watch && d.watch.uuid === uuid && d.watch.paused === expect) { clearTimeout(t); resolve(); }
        });
      });
      if (o.trigger === "socket") ws[0].emit("watch_operation", { op: "pause", uuid });
      else await api(o, "GET", `/api/v1/watch/${uuid}?paused=${expect ? "paused" : "unpaused"}`);
      await got;
      ws[0].off("watch_update");
      paused = expect;
    }
    for (const s of ws) s.close();
  }
  // The controller: sends the socket triggers, and is the one listener of the solo rechecks.
  const controller = await connectOne(o, "controller");
  let solo = null;
  let history = 0;
  if (o.recheckRounds > 0) {
    history = Number((await api(o, "GET", `/api/v1/watch/${uuid}`)).data.history_n) || 0;
    solo = await recheckPhase(o, uuid, controller, [controller], history, log, "solo");
    history = solo.history;
    log(`solo rechecks: p50 ${fig(solo.first, 50)} ms, p99 ${fig(solo.first, 99)} ms`);
  }
  await sleep(o.settleMs);

  const rssBefore = rssKb(o.pid);
  const threadsBefore = threads(o.pid);
  log(`watch ${uuid} checked; server RSS ${rssBefore} kB; connecting ${o.n} clients`);

  // Connect N listeners, o.batch at a time (the upstream dev server has a 128-slot backlog).
  const clients = [];
  const tConnect = now();
  for (let i = 0; i < o.n; i += o.batch) {
    const batch = [];
    for (let j = i; j < Math.min(o.n, i + o.batch); j++) batch.push(connectOne(o, j));
    clients.push(...(await Promise.all(batch)));
  }
  const connectMs = now() - tConnect;

  // Per round: when each client saw the watch_update with the expected paused state.
  let round = null; // {expect, t0, seen: Uint8Array, count, first, last, resolve}
  const onUpdate = (idx) => (data) => {
    const w = data && data.watch;
    if (!round || !w || w.uuid !== uuid || w.paused !== round.expect || round.seen[idx]) return;
    const t = now();
    round.seen[idx] = 1;
    round.count++;
    if (round.first === null) round.first = t;
    round.last = t;
    if (round.count === o.n) round.resolve();
  };
  clients.forEach((s, idx) => s.on("watch_update", onUpdate(idx)));
  let disconnects = 0;
  clients.forEach((s) => s.on("disconnect", () => { disconnects++; }));

  await sleep(o.settleMs);
  const rssAfter = rssKb(o.pid);
  const threadsAfter = threads(o.pid);
  log(`${o.n} clients connected in ${connectMs.toFixed(0)} ms; server RSS ${rssAfter} kB`);

  const all = [];
  const first = [];
  let incomplete = 0;
  let missed = 0;
  const cpu0 = cpuTicks(o.pid);
  const clientCpu0 = process.cpuUsage();
  const tRounds = now();
  for (let r = 0; r < o.rounds; r++) {
    const expect = !paused;
    let timer;
    const done = new Promise((resolve) => {
      round = { expect, t0: 0, seen: new Uint8Array(o.n), count: 0, first: null, last: null, resolve };
      timer = setTimeout(resolve, o.roundTimeoutMs);
    });
    round.t0 = now();
    if (o.trigger === "socket") {
      controller.emit("watch_operation", { op: "pause", uuid });
    } else {
      const res = await api(o, "GET", `/api/v1/watch/${uuid}?paused=${expect ? "paused" : "unpaused"}`);
      if (res.status !== 200) throw new Error(`pause toggle: ${res.status} ${JSON.stringify(res.data)}`);
    }
    await done;
    clearTimeout(timer);
    const rd = round;
    round = null;
    paused = expect;
    if (rd.count < o.n) {
      incomplete++;
      missed += o.n - rd.count;
      all.push(o.roundTimeoutMs);
      log(`round ${r}: only ${rd.count}/${o.n} clients got the update within ${o.roundTimeoutMs} ms`);
      if (rd.count === 0) break; // the trigger does not produce watch_update: no point going on
    } else {
      all.push(rd.last - rd.t0);
    }
    if (rd.first !== null) first.push(rd.first - rd.t0);
    await sleep(o.gapMs);
  }
  const roundsWallMs = now() - tRounds;
  const cpu1 = cpuTicks(o.pid);
  const clientCpu = process.cpuUsage(clientCpu0);
  const rssEnd = rssKb(o.pid);

  // The rechecks again, now with the N clients listening.
  let fan = null;
  if (o.recheckRounds > 0) {
    fan = await recheckPhase(o, uuid, controller, clients, history, log, "fan-out");
    log(`rechecks with ${o.n} clients: last-first p50 ${fig(fan.spread, 50)} ms, p99 ${fig(fan.spread, 99)} ms`);
  }

  const lostConnections = disconnects;
  for (const s of clients) s.close();
  controller.close();
  fixture.close();
  await api(o, "DELETE", `/api/v1/watch/${uuid}`).catch(() => {});

  const sAll = [...all].sort((a, b) => a - b);
  const sFirst = [...first].sort((a, b) => a - b);
  const result = {
    label: o.label,
    n: o.n,
    rounds: all.length,
    trigger: o.trigger,
    connect_ms: Math.round(connectMs),
    all_p50_ms: +pct(sAll, 50).toFixed(2),
    all_p95_ms: +pct(sAll, 95).toFixed(2),
    all_max_ms: +sAll[sAll.length - 1].toFixed(2),
    first_p50_ms: +pct(sFirst, 50).toFixed(2),
    incomplete_rounds: incomplete,
    missed_deliveries: missed,
    client_disconnects: lostConnections,
    rss_before_kb: rssBefore,
    rss_after_kb: rssAfter,
    rss_end_kb: rssEnd,
    rss_per_conn_kb: rssBefore !== null ? +((rssAfter - rssBefore) / o.n).toFixed(2) : null,
    threads_before: threadsBefore,
    threads_after: threadsAfter,
    server_cpu_ms_per_round: cpu0 !== null ? +(((cpu1 - cpu0) * 10) / all.length).toFixed(2) : null,
    // This one Node process parses every delivery of all N clients: when its CPU per round comes
    // near the all-received latency, the client side, not the server, is the limit.
    client_cpu_ms_per_round: +((clientCpu.user + clientCpu.system) / 1000 / all.length).toFixed(2),
    rounds_wall_ms: Math.round(roundsWallMs),
    recheck_rounds: o.recheckRounds,
    // recheck -> completing watch_update, only the controller connected
    check_p50_ms: solo && fig(solo.first, 50),
    check_p99_ms: solo && fig(solo.first, 99),
    check_max_ms: solo && fig(solo.first, 100),
    // with N connected: recheck -> the last client; first client -> last client
    check_all_p50_ms: fan && fig(fan.last, 50),
    check_all_p99_ms: fan && fig(fan.last, 99),
    fanout_p50_ms: fan && fig(fan.spread, 50),
    fanout_p99_ms: fan && fig(fan.spread, 99),
    fanout_max_ms: fan && fig(fan.spread, 100),
    recheck_incomplete: (solo ? solo.incomplete : 0) + (fan ? fan.incomplete : 0),
  };
  console.log(JSON.stringify(result));
  if (o.json) writeFileSync(o.json, JSON.stringify(result) + "\n");
  process.exit(incomplete === 0 && result.recheck_incomplete === 0 ? 0 : 2);
}

main().catch((e) => {
  console.error(`socket_load: ${e.message}`);
  process.exit(1);
});
