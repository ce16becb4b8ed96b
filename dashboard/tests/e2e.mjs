// Browser end-to-end test of the changewatch dashboard.
//
// Drives the real dashboard in Debian's Chromium against a running `changewatch serve`
// (started by the caller) and a fixture web site served by this script, and checks that the
// list stays live without reloads: add -> checked -> changed -> diff -> viewed -> paused, plus
// HTML escaping of titles, notifications (test sends from the settings and edit pages to a
// receiver in this script, the notification log, a failed change notification on its row), the
// edit page's fetch method and browser-steps editor, the restock processor (edit page and
// the list's stock and price), and phone-width layouts without
// horizontal overflow.
//
// Environment:
//   CW_BASE_URL   the running server, e.g. http://127.0.0.1:PORT
//   CW_API_KEY    its API key (x-api-key), used for REST cross-checks and set-up
//   CW_ARTIFACTS  directory for screenshots (created); failure.png / failure.html on failure
//
// Run:  node dashboard/tests/e2e.mjs   (exit 0 = pass, 1 = fail, 2 = bad set-up)
// Prints one `ok N - step (ms)` line per step, `not ok N - step` plus the error on failure.
//
// A server for local runs (the Rust test harness starts its own the same way):
//   ALLOW_PRIVATE_ADDRESSES=true API_ACCESS_TOKEN=<key> DATASTORE_PATH=$(mktemp -d) \
//   CHANGEDETECTION_HOST=127.0.0.1 CHANGEDETECTION_PORT=0 DASHBOARD_DIR=dashboard/dist \
//   target/debug/changewatch serve     # prints "changewatch listening on http://127.0.0.1:PORT"
// ALLOW_PRIVATE_ADDRESSES lets the checker fetch this script's fixture site on 127.0.0.1.
//
// Every wait is for a condition with an explicit timeout (never a fixed sleep), so a slow
// machine only makes the run slower, and a broken dashboard fails within STEP_TIMEOUT_MS.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
/** Upper bound of any single step (the brief: <= 15 s). */
const STEP_TIMEOUT_MS = 15_000;
/** Default limit of one browser action or REST call, below the step's so its error shows. */
const ACTION_TIMEOUT_MS = 10_000;
/** Polling interval of DOM conditions; the only "sleep" in this script. */
const POLL_MS = 50;
/** Last resort if something hangs outside a step (e.g. the browser refuses to close). */
const OVERALL_TIMEOUT_MS = 150_000;

// --------------------------------------------------------------------------------------
// Configuration

function requireEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`error: environment variable ${name} is required`);
    process.exit(2);
  }
  return v;
}

const BASE_URL = requireEnv('CW_BASE_URL').replace(/\/+$/, '');
const API_KEY = requireEnv('CW_API_KEY');
const ARTIFACTS = path.resolve(requireEnv('CW_ARTIFACTS'));
fs.mkdirSync(ARTIFACTS, { recursive: true });
// A failure.png left by an earlier run must not be mistaken for this run's.
for (const stale of ['failure.png', 'failure.html']) fs.rmSync(path.join(ARTIFACTS, stale), { force: true });

if (!fs.existsSync(CHROMIUM)) {
  console.error(`error: ${CHROMIUM} not found; install Debian's chromium package (apt-get install chromium)`);
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`error: the whole test took longer than ${OVERALL_TIMEOUT_MS / 1000} s; aborting`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
// Only fires if something keeps the process alive past the end.
watchdog.unref();

// --------------------------------------------------------------------------------------
// Fixture web site
//
// `/` is the page under watch; its body is changed between steps. Its responses can be held
// back (`fixture.hold()`), which pins the watch in its "being checked" state for as long as the
// test needs to observe it, instead of hoping to catch a check that takes milliseconds.
// `/other` is a static page for the watch created over REST.
// `/notify-page` is the page of the watch whose change notification fails; its body changes too.
// `/hook…` receives notifications (json://127.0.0.1:PORT/hook…): each request is recorded;
// `/hook-reject` answers 400, a permanent failure (no retries), every other hook 200.

function html(title, body) {
  return `<!doctype html><html><head><title>${title}</title></head><body>${body}</body></html>`;
}

function shopPage(price) {
  return html('Fixture shop', `<p>${price}</p>`);
}

/** A product page as shops mark one up: a JSON-LD Product with its offer's price and stock. */
function productPage(inStock, price) {
  const offer = {
    '@type': 'Offer',
    price,
    priceCurrency: 'EUR',
    availability: `https://schema.org/${inStock ? 'InStock' : 'OutOfStock'}`,
  };
  const ld = JSON.stringify({ '@context': 'https://schema.org', '@type': 'Product', name: 'Kettle', offers: offer });
  return `<!doctype html><html><head><title>Kettle</title><script type="application/ld+json">${ld}</script></head><body><h1>Kettle</h1><p>${price} EUR</p></body></html>`;
}

function startFixture() {
  const state = {
    shop: shopPage('Price: 10'),
    product: productPage(true, '100.00'),
    held: null, // { promise, release } while responses to / are held
    notifyPage: html('Notify page', '<p>Stock: 1</p>'),
    hooks: [], // { path, method, contentType, body } of every request to /hook…
    hits: 0, // requests to / so far
    hitWaiters: [],
  };
  const server = http.createServer((req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    };
    const url = new URL(req.url ?? '/', 'http://fixture');
    if (url.pathname === '/') {
      state.hits++;
      for (const w of state.hitWaiters.splice(0)) w();
      // Read the body when answering, so a held request gets the content current at release.
      const reply = () => send(200, state.shop);
      if (state.held) state.held.promise.then(reply);
      else reply();
    } else if (url.pathname === '/other') {
      send(200, html('Other fixture', '<p>Nothing to see</p>'));
    } else if (url.pathname === '/notify-page') {
      send(200, state.notifyPage);
    } else if (url.pathname === '/product') {
      send(200, state.product);
    } else if (url.pathname.startsWith('/hook')) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        state.hooks.push({
          path: url.pathname,
          method: req.method,
          contentType: req.headers['content-type'] ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const reject = url.pathname === '/hook-reject';
        res.writeHead(reject ? 400 : 200, { 'content-type': 'application/json' });
        res.end(reject ? '{"error":"rejected by the e2e receiver"}' : '{}');
      });
    } else {
      send(404, html('Not found', '<p>Not found</p>'));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/`,
        otherUrl: `http://127.0.0.1:${port}/other`,
        notifyPageUrl: `http://127.0.0.1:${port}/notify-page`,
        productUrl: `http://127.0.0.1:${port}/product`,
        setProduct(inStock, price) {
          state.product = productPage(inStock, price);
        },
        /** A notification URL that lands on this server's `path`. */
        hookUrl: (hookPath) => `json://127.0.0.1:${port}${hookPath}`,
        /** Requests received on `path` so far. */
        hooks: (hookPath) => state.hooks.filter((r) => r.path === hookPath),
        setNotifyPage(markup) {
          state.notifyPage = markup;
        },
        setShop(markup) {
          state.shop = markup;
        },
        hold() {
          let release;
          const promise = new Promise((r) => (release = r));
          state.held = { promise, release };
        },
        release() {
          state.held?.release();
          state.held = null;
        },
        get hits() {
          return state.hits;
        },
        /** Resolves once / has been requested more than `n` times. */
        waitForHitsAbove(n, timeoutMs, what) {
          return withTimeout(
            new Promise((resolve) => {
              const check = () => (state.hits > n ? resolve() : state.hitWaiters.push(check));
              check();
            }),
            timeoutMs,
            what,
          );
        },
        close() {
          this.release();
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

// --------------------------------------------------------------------------------------
// Helpers

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** Equal as JSON, whatever the order of object keys. */
function sameJson(a, b) {
  const canon = (v) =>
    JSON.stringify(v, (_k, x) =>
      x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => (p < q ? -1 : 1))) : x,
    );
  return canon(a) === canon(b);
}

/** REST call with the API key; returns parsed JSON (or text). */
async function rest(method, apiPath, body) {
  const res = await fetch(`${BASE_URL}${apiPath}`, {
    method,
    headers: { 'x-api-key': API_KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${apiPath}: HTTP ${res.status} ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * What a time cell must say right after a check. "a while" / "right now" (the wording for a
 * time in the future) would mean the browser-side clock estimate put the check ahead of now.
 */
const RECENT = /^(just now|\d+ seconds ago|\d+s ago)$/;

const rowSel = (uuid) => `tr.watch-row[data-uuid="${uuid}"]`;

/** What a row looks like right now, for assertions and for error messages. */
function rowState(page, uuid) {
  return page.evaluate((sel) => {
    const tr = document.querySelector(sel);
    if (!tr) return null;
    const text = (s) => tr.querySelector(s)?.textContent?.trim() ?? null;
    return {
      classes: Array.from(tr.classList),
      title: text('td.title'),
      lastChecked: text('td.last-checked'),
      lastChanged: text('td.last-changed'),
      status: text('td.status'),
      pause: text('button[data-action=pause]'),
    };
  }, rowSel(uuid));
}

/**
 * Waits until `predicate(rowState)` holds for the row (polling the DOM). The timeout error
 * says what was awaited and what the row looked like last, which is what one needs to debug.
 */
async function waitForRow(page, uuid, what, predicate, timeoutMs = stepBudget()) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    last = await rowState(page, uuid);
    if (last && predicate(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what}; row is ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Waits for a condition on this side (e.g. the receiver got a request), polling. */
async function waitUntil(what, fn, timeoutMs = stepBudget()) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Fails unless the page fits `width` (names the widest element otherwise). */
async function assertNoOverflow(page, width, where) {
  const widths = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    // The widest element, to name the culprit if the page overflows.
    widest: Array.from(document.querySelectorAll('body *'))
      .map((el) => ({ el, right: el.getBoundingClientRect().right }))
      .sort((a, b) => b.right - a.right)
      .slice(0, 1)
      .map(({ el, right }) => `${el.tagName.toLowerCase()}.${Array.from(el.classList).join('.')} right=${Math.round(right)}`)[0],
  }));
  assert(
    widths.scroll <= width,
    `no horizontal overflow at ${width} px on ${where} (scrollWidth=${widths.scroll}, widest: ${widths.widest})`,
  );
}

/** Waits for a page-side condition; `what` names it in the timeout error. */
async function waitForPage(page, what, fn, arg, timeoutMs = stepBudget()) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: POLL_MS });
  } catch (err) {
    throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${what} (${String(err.message).split('\n')[0]})`);
  }
}

// --------------------------------------------------------------------------------------
// The scenario

const started = Date.now();
let step = 0;
let stepName = 'set-up';
let stepDeadline = Infinity;

/**
 * Time left for a wait inside the current step. Waits end a little before the step's own
 * limit, so a timeout reports the specific condition (and the row's state), not just the step.
 */
function stepBudget() {
  return Math.max(100, Math.min(STEP_TIMEOUT_MS, stepDeadline - Date.now() - 500));
}
/** The page a failure screenshot should show (the phone page once that step runs). */
let currentPage = null;
const pageErrors = [];
const consoleErrors = [];
/** console.debug lines of the pages (the socket's notification_event handler logs there). */
const consoleDebug = [];

async function runStep(name, fn) {
  step++;
  stepName = name;
  const t0 = Date.now();
  stepDeadline = t0 + STEP_TIMEOUT_MS;
  await withTimeout(fn(), STEP_TIMEOUT_MS, `step "${name}"`);
  console.log(`ok ${step} - ${name} (${Date.now() - t0} ms)`);
}

function watchPageErrors(page, label) {
  page.on('pageerror', (err) => pageErrors.push(`[${label}] ${err.stack || err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`[${label}] ${msg.text()} (${msg.location().url || '?'})`);
    if (msg.type() === 'debug') consoleDebug.push(msg.text());
  });
}

async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true, timeout: ACTION_TIMEOUT_MS });
  return file;
}

async function main() {
  const fixture = await startFixture();
  let browser = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: STEP_TIMEOUT_MS,
    });
    await scenario(browser, fixture);
    console.log(`# passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
    return 0;
  } catch (err) {
    console.error(`not ok ${step} - ${stepName}\n${err && err.stack ? err.stack : err}`);
    if (pageErrors.length) console.error(`# page errors:\n${pageErrors.join('\n')}`);
    if (consoleErrors.length) console.error(`# console errors:\n${consoleErrors.join('\n')}`);
    await saveFailureArtifacts();
    return 1;
  } finally {
    // Release held fixture requests first: a pending check must not keep anything open.
    fixture.release();
    if (browser) await withTimeout(browser.close(), 10_000, 'closing the browser').catch(() => undefined);
    await withTimeout(fixture.close(), 5_000, 'closing the fixture server').catch(() => undefined);
  }
}

async function saveFailureArtifacts() {
  if (!currentPage || currentPage.isClosed()) return;
  try {
    await currentPage.screenshot({ path: path.join(ARTIFACTS, 'failure.png'), fullPage: true, timeout: 10_000 });
    fs.writeFileSync(path.join(ARTIFACTS, 'failure.html'), await currentPage.content());
    console.error(`# saved ${path.join(ARTIFACTS, 'failure.png')} and failure.html`);
  } catch (e) {
    console.error(`# could not save failure artifacts: ${e.message}`);
  }
}

async function scenario(browser, fixture) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  currentPage = page;
  page.setDefaultTimeout(ACTION_TIMEOUT_MS);
  watchPageErrors(page, 'desktop');
  // Full document loads of the main page; anything but 1 means the page reloaded.
  let loads = 0;
  page.on('load', () => loads++);
  const assertNoReload = async (when) => {
    const marker = await page.evaluate(() => window.__marker);
    assert(marker === 1 && loads === 1, `no page reload ${when} (marker=${marker}, loads=${loads})`);
  };

  let uuid = ''; // the watch added through the quick-add form
  let evilUuid = ''; // the watch with HTML in its title
  let notifyUuid = ''; // the watch whose change notification fails
  let stepsUuid = ''; // the (paused) watch whose browser steps are edited

  await runStep('dashboard opens with live updates connected', async () => {
    await page.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    await page.locator('form#quick-add input[name=url]').waitFor({ state: 'visible' });
    // Without the socket the list would only poll every 15 s: the live steps need it up.
    await waitForPage(page, 'the live-updates indicator', () =>
      document.getElementById('conn-status')?.classList.contains('connected'),
    );
    // The list has loaded once "Loading…" is gone (an empty store shows its own message).
    await waitForPage(page, 'the watch list to load', () => {
      const tbody = document.querySelector('table.watch-table tbody');
      return tbody !== null && !/Loading/.test(tbody.textContent ?? '');
    });
    // Survives hash navigation, lost on any reload.
    await page.evaluate(() => {
      window.__marker = 1;
    });
  });

  await runStep('quick-add: the row appears live and goes from queued/checking to checked', async () => {
    // Hold the fixture's answer so the "not checked yet / checking" state can be observed.
    fixture.hold();
    const hitsBefore = fixture.hits;
    await page.fill('form#quick-add input[name=url]', fixture.url);
    await page.click('form#quick-add button[type=submit]');

    // The new row is found by its URL (it is the only one pointing at the fixture's /).
    const handle = await waitForPage(
      page,
      `a row for ${fixture.url}`,
      (url) =>
        Array.from(document.querySelectorAll('tr.watch-row')).find(
          (tr) => tr.querySelector('td.title a')?.getAttribute('href') === url,
        )?.dataset.uuid ?? null,
      fixture.url,
    );
    uuid = await handle.jsonValue();
    assert(typeof uuid === 'string' && uuid.length > 0, 'the new row has a data-uuid');

    await page
      .locator('#toasts .toast', { hasText: `Now watching ${fixture.url}` })
      .waitFor({ state: 'attached' });
    assert(
      (await page.inputValue('form#quick-add input[name=url]')) === '',
      'the quick-add URL field is cleared after adding',
    );

    // The checker is now waiting on the fixture: the row must say so, live.
    await fixture.waitForHitsAbove(hitsBefore, stepBudget(), 'the checker to fetch the fixture page');
    const pending = await waitForRow(
      page,
      uuid,
      'the row to show the check in progress',
      (r) => r.classes.includes('checking-now') || r.classes.includes('queued'),
    );
    console.log(`# while the fixture holds the check: classes "${pending.classes.join(' ')}", status "${pending.status}"`);
    assert(pending.lastChecked === 'Not yet', `last-checked is "Not yet" before the first check (got "${pending.lastChecked}")`);

    fixture.release();
    const checked = await waitForRow(
      page,
      uuid,
      'the row to show the finished check',
      (r) => r.lastChecked !== 'Not yet' && !r.classes.includes('checking-now') && !r.classes.includes('queued'),
    );
    assert(RECENT.test(checked.lastChecked), `last-checked reads "just now" (got "${checked.lastChecked}")`);
    assert(checked.lastChanged === 'Not yet', `a first check is not a change (last-changed "${checked.lastChanged}")`);
    assert(!checked.classes.includes('unviewed'), 'the first check does not mark the watch unviewed');
    assert(!checked.classes.includes('has-error'), `the check succeeded (status "${checked.status}")`);
    // The page title of the fixture becomes the row's name.
    await waitForRow(page, uuid, 'the row title to become the page title', (r) => r.title.includes('Fixture shop'));
    await assertNoReload('while adding and checking');
    await screenshot(page, '1-added.png');
  });

  await runStep('recheck after a content change marks the row unviewed live', async () => {
    fixture.setShop(shopPage('Price: 11'));
    const hitsBefore = fixture.hits;
    await page.click(`${rowSel(uuid)} button[data-action=recheck]`);
    await fixture.waitForHitsAbove(hitsBefore, stepBudget(), 'the recheck to fetch the fixture page');
    const changed = await waitForRow(
      page,
      uuid,
      'the row to become unviewed with a last-changed time',
      (r) => r.classes.includes('unviewed') && r.lastChanged !== 'Not yet' && !r.classes.includes('checking-now'),
    );
    assert(!changed.classes.includes('has-error'), `the recheck succeeded (status "${changed.status}")`);
    assert(RECENT.test(changed.lastChecked), `last-checked reads "just now" (got "${changed.lastChecked}")`);
    assert(RECENT.test(changed.lastChanged), `last-changed reads "just now" (got "${changed.lastChanged}")`);
    await waitForPage(page, 'the unread counter to show 1', () =>
      document.querySelector('.unread-count-int')?.textContent === '1',
    );
    await assertNoReload('after the recheck');
    await screenshot(page, '2-changed.png');
  });

  await runStep('history page shows the change highlighted; the row is viewed afterwards', async () => {
    await page.click(`${rowSel(uuid)} button[data-action=history]`);
    await page.waitForURL(`**/#/history/${uuid}`);
    assert((await page.inputValue('select[name=format]')) === 'htmlcolor', 'the diff defaults to the coloured format');

    // The server marks the old line as removed/changed and the new one as added/changed-into
    // with inline colours, which the dashboard's sanitizer carries over.
    const marks = await (
      await waitForPage(page, 'the coloured diff with "Price: 11"', () => {
        const out = document.querySelector('#diff-output');
        if (!out || out.getAttribute('aria-busy') === 'true') return null;
        const found = Array.from(out.querySelectorAll('[aria-label]')).map((el) => ({
          label: el.getAttribute('aria-label'),
          text: el.textContent.trim(),
          background: getComputedStyle(el).backgroundColor,
        }));
        return found.some((m) => m.text === 'Price: 11') ? found : null;
      })
    ).jsonValue();
    const rgb = (css) => (css.match(/\d+/g) ?? []).slice(0, 3).map(Number);
    const added = marks.find((m) => m.text === 'Price: 11');
    assert(['Added text', 'Changed into'].includes(added.label), `"Price: 11" is marked as added (label "${added.label}")`);
    const [ar, ag, ab] = rgb(added.background);
    assert(ag > ar && ag > ab, `"Price: 11" has a green background (got ${added.background})`);
    const removed = marks.find((m) => m.text === 'Price: 10');
    assert(removed, `"Price: 10" is shown as removed (marks: ${JSON.stringify(marks)})`);
    assert(['Removed text', 'Changed text'].includes(removed.label), `"Price: 10" is marked as removed (label "${removed.label}")`);
    const [rr, rg, rb] = rgb(removed.background);
    assert(rr > rg && rr > rb, `"Price: 10" has a red background (got ${removed.background})`);
    // Only the diff spans may carry markup: no raw HTML of the fixture page leaks in.
    const foreign = await page.$$eval('#diff-output *', (els) =>
      els.map((e) => e.tagName.toLowerCase()).filter((t) => !['div', 'span', 'br', 'p', 'del', 'ins'].includes(t)),
    );
    assert(foreign.length === 0, `the diff contains only diff markup (found ${foreign.join(', ')})`);
    await screenshot(page, '3-diff.png');

    // Back to the list through the main navigation (a hash change, not a page load).
    await page.click('.mainnav a[data-route=list]');
    await page.waitForURL(`${BASE_URL}/#/`);
    await waitForRow(page, uuid, 'the row to be viewed (no longer unviewed)', (r) => !r.classes.includes('unviewed'));
    await waitForPage(page, 'the unread counter to show 0', () =>
      document.querySelector('.unread-count-int')?.textContent === '0',
    );
    const watch = await rest('GET', `/api/v1/watch/${uuid}`);
    assert(watch.history_n === 2, `the watch has two snapshots (history_n=${watch.history_n})`);
    await assertNoReload('after visiting the history page');
  });

  await runStep('pause from the row: class, button text and REST agree', async () => {
    await page.click(`${rowSel(uuid)} button[data-action=pause]`);
    const paused = await waitForRow(
      page,
      uuid,
      'the row to be paused with an Unpause button',
      (r) => r.classes.includes('paused') && r.pause === 'Unpause',
    );
    assert(paused.title.includes('paused'), 'the title cell shows a "paused" badge');
    const watch = await rest('GET', `/api/v1/watch/${uuid}`);
    assert(watch.paused === true, `GET /api/v1/watch/<uuid> says paused (got ${JSON.stringify(watch.paused)})`);
    await assertNoReload('after pausing');
    await screenshot(page, '4-paused.png');
  });

  await runStep('a watch title with HTML is shown as text, never run', async () => {
    const evil = '<img src=x onerror="window.__xss=1">';
    ({ uuid: evilUuid } = await rest('POST', '/api/v1/watch', { url: fixture.otherUrl, title: evil }));
    assert(evilUuid, 'POST /api/v1/watch returned a uuid');
    // Added elsewhere (the API): the row must arrive live, over the socket.
    await waitForRow(page, evilUuid, 'the REST-created row to appear live', (r) => r.title.includes(evil));
    const injected = await page.evaluate(
      (sel) => ({
        xss: typeof window.__xss,
        imgs: document.querySelectorAll(`${sel} img:not(.favicon-img), #app img[src="x"]`).length,
        linkText: document.querySelector(`${sel} td.title .watch-link`)?.textContent ?? null,
      }),
      rowSel(evilUuid),
    );
    assert(injected.linkText === evil, `the title is shown literally (got ${JSON.stringify(injected.linkText)})`);
    assert(injected.imgs === 0, 'no <img> was created from the title');
    assert(injected.xss === 'undefined', 'the onerror handler never ran');
    await assertNoReload('after the REST-created watch');
  });

  await runStep('settings: "Send test notification" delivers the unsaved form to a local receiver', async () => {
    await page.click('.mainnav a[data-route=settings]');
    await page.waitForURL('**/#/settings');
    const urls = page.locator('form#settings-form textarea[name=notification_urls]');
    await urls.waitFor({ state: 'visible' });
    await urls.fill(fixture.hookUrl('/hook'));
    await page.fill('form#settings-form input[name=notification_title]', 'E2E test <b>title</b>');
    await page.click('form#settings-form button[data-action=send-test-notification]');

    const status = page.locator('form#settings-form .notify-test-status');
    await status.locator('.notify-test-summary', { hasText: 'Test notification sent to 1 URL.' }).waitFor({ state: 'visible' });
    assert((await status.getAttribute('role')) === 'status', 'the outcome is announced (role=status)');
    const result = (await status.locator('li.notify-result.ok').textContent()) ?? '';
    assert(result.includes('127.0.0.1') && result.includes('sent'), `the URL's outcome is listed (got "${result}")`);
    assert(!(await page.locator('form#settings-form .notify-test-error').isVisible()), 'no error is shown');

    const [hook] = await waitUntil(
      'the receiver to get the test notification',
      () => fixture.hooks('/hook').length > 0 && fixture.hooks('/hook'),
    );
    assert(hook.method === 'POST', `the receiver got a POST (got ${hook.method})`);
    assert(hook.contentType.includes('application/json'), `a JSON body (content-type "${hook.contentType}")`);
    const payload = JSON.parse(hook.body);
    assert(payload.title === 'E2E test <b>title</b>', `the unsaved title was sent (got ${JSON.stringify(payload.title)})`);
    assert(typeof payload.message === 'string' && payload.message.length > 0, 'the message has a body');
    // Testing saves nothing: the stored global URLs are still empty.
    const stored = await rest('GET', '/api/v1/notifications');
    assert(
      Array.isArray(stored.notification_urls) && stored.notification_urls.length === 0,
      `the settings were not saved by the test (got ${JSON.stringify(stored)})`,
    );
    await assertNoReload('after the test notification');
    await screenshot(page, '5-settings-test-notification.png');
  });

  await runStep('settings: an invalid notification URL is reported inline as an alert', async () => {
    const errorsBefore = consoleErrors.length;
    await page.fill('form#settings-form textarea[name=notification_urls]', 'foo://bar');
    await page.click('form#settings-form button[data-action=send-test-notification]');
    const alert = page.locator('form#settings-form .notify-test-error[role=alert]');
    await alert.waitFor({ state: 'visible' });
    // Chromium logs every 4xx response as a console error: this one is the expected answer.
    const expected = /status of 400 .*\/api\/v1\/notifications\/test/;
    const during = consoleErrors.splice(errorsBefore);
    consoleErrors.push(...during.filter((e) => !expected.test(e)));
    const text = (await alert.textContent()) ?? '';
    assert(/not a valid AppRise URL/i.test(text), `the server's reason is shown (got "${text}")`);
    assert(
      (await page.locator('form#settings-form .notify-test-status').textContent()) === '',
      'the earlier success is cleared',
    );
  });

  await runStep('settings: the RSS feed fields are saved; a new RSS token replaces the feed link', async () => {
    // A fresh form (the steps before left unsaved edits in this one).
    await page.evaluate(() => {
      location.hash = '#/';
    });
    await page.click('.mainnav a[data-route=settings]');
    const format = page.locator('form#settings-form select[name=rss_content_format]');
    await format.waitFor({ state: 'visible' });
    await format.selectOption('html');
    await page.fill('form#settings-form input[name=rss_diff_length]', '3');
    await page.fill('form#settings-form textarea[name=rss_template_override]', '{{watch_label}}: {{diff}}');
    const put = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/ui/settings'));
    await page.click('form#settings-form button[type=submit]');
    const answer = await put;
    assert(answer.status() === 200, `the save is accepted (HTTP ${answer.status()})`);
    const sent = answer.request().postDataJSON();
    assert(
      sameJson(Object.keys(sent).sort(), ['rss_content_format', 'rss_diff_length', 'rss_template_override']),
      `only the changed RSS fields are sent (got ${JSON.stringify(sent)})`,
    );
    const saved = await page.evaluate(() => fetch('/ui/settings', { headers: { 'X-Changewatch-UI': '1' } }).then((r) => r.json()));
    assert(
      saved.rss_content_format === 'html' && saved.rss_diff_length === 3 && saved.rss_template_override === '{{watch_label}}: {{diff}}',
      `the RSS settings are stored (got ${JSON.stringify(saved)})`,
    );

    const before = saved.rss_access_token;
    assert((await page.textContent('#rss-token')) === before, 'the token is shown');
    page.once('dialog', (d) => void d.accept());
    await page.click('button#regenerate-rss-token');
    await waitForPage(page, 'a new token on the page', (old) => {
      const t = document.querySelector('#rss-token')?.textContent ?? '';
      return t.length === 32 && t !== old;
    }, before);
    const fresh = await page.evaluate(() => fetch('/ui/settings', { headers: { 'X-Changewatch-UI': '1' } }).then((r) => r.json()));
    assert(fresh.rss_access_token !== before, 'the server holds a new token');
    const href = await page.getAttribute('#rss-main-feed', 'href');
    assert(href === `/rss?token=${fresh.rss_access_token}`, `the feed link carries the new token (got ${href})`);
    // Asked from here, not the page: a 403 in the page would be a console error.
    const old = (await fetch(`${BASE_URL}/rss?token=${before}`, { signal: AbortSignal.timeout(ACTION_TIMEOUT_MS) })).status;
    assert(old === 403, `the old token no longer opens the feed (HTTP ${old})`);
    await assertNoReload('after the RSS settings');
  });

  await runStep('notification log lists the test delivery; refresh shows new entries', async () => {
    await page.click('form#settings-form a.notification-log-link');
    await page.waitForURL('**/#/settings/notification-log');
    const entry = page.locator('#notification-log tr.log-entry[data-kind=test][data-outcome=sent]', { hasText: '127.0.0.1' });
    await entry.first().waitFor({ state: 'visible' });
    const cells = await entry
      .first()
      .evaluate((tr) => Object.fromEntries(Array.from(tr.cells).map((td) => [td.dataset.label, td.textContent.trim()])));
    assert(cells.Kind === 'Test', `kind "Test" (got ${JSON.stringify(cells)})`);
    assert(cells.Outcome === 'sent' && cells.Attempt === '1', `sent at the first attempt (got ${JSON.stringify(cells)})`);
    assert(cells.Watch === '—', `a settings test belongs to no watch (got "${cells.Watch}")`);
    assert(!cells.URL.includes('/hook'), `the URL is shown redacted (got "${cells.URL}")`);
    assert(cells.Time.length > 0, 'the time is shown');
    assert(
      (await page.getAttribute('.mainnav a[data-route=settings]', 'aria-current')) === 'page',
      'the settings section is current in the main navigation',
    );
    const before = await page.locator('#notification-log tr.log-entry').count();
    await rest('POST', '/api/v1/notifications/test', { notification_urls: [fixture.hookUrl('/hook-rest')] });
    await page.click('button[data-action=refresh-log]');
    await waitForPage(
      page,
      'the refreshed log to have one more entry',
      (n) => document.querySelectorAll('#notification-log tr.log-entry').length === n + 1,
      before,
    );
    await assertNoReload('on the notification log');
    await screenshot(page, '6-notification-log.png');
  });

  await runStep('edit page: "Send test notification" sends the form values with the watch uuid', async () => {
    await page.evaluate((u) => {
      location.hash = `#/edit/${u}`;
    }, uuid);
    const urls = page.locator('form#edit-form textarea[name=notification_urls]');
    await urls.waitFor({ state: 'visible' });
    await urls.fill(fixture.hookUrl('/hook-edit'));
    await page.fill('form#edit-form input[name=notification_title]', 'Edit page test');
    await page.click('form#edit-form button[data-action=send-test-notification]');
    await page
      .locator('form#edit-form .notify-test-status .notify-test-summary', { hasText: 'Test notification sent to 1 URL.' })
      .waitFor({ state: 'visible' });
    const [hook] = await waitUntil(
      'the receiver to get the edit page test',
      () => fixture.hooks('/hook-edit').length > 0 && fixture.hooks('/hook-edit'),
    );
    assert(JSON.parse(hook.body).title === 'Edit page test', `the form's title was sent (got ${hook.body.slice(0, 200)})`);
    // Not saved by the test.
    const watch = await rest('GET', `/api/v1/watch/${uuid}`);
    assert(
      watch.notification_urls.length === 0,
      `the watch was not changed (got ${JSON.stringify(watch.notification_urls)})`,
    );

    // The log names the watch and links to it.
    await page.click('form#edit-form a.notification-log-link');
    await page.waitForURL('**/#/settings/notification-log');
    const link = page.locator(`#notification-log tr.log-entry[data-kind=test] a.log-watch[href="#/edit/${uuid}"]`).first();
    await link.waitFor({ state: 'visible' });
    const name = (await link.textContent()) ?? '';
    assert(name.includes('Fixture shop'), `the watch is named by its title (got "${name}")`);
    await screenshot(page, '7-notification-log-watch.png');
    await assertNoReload('after the edit page test');
  });

  await runStep('proxies: the settings list becomes the edit page\'s choices, and a choice is saved', async () => {
    await page.click('.mainnav a[data-route=settings]');
    await page.waitForURL('**/#/settings');
    const list = page.locator('form#settings-form textarea[name=extra_proxies]');
    await list.waitFor({ state: 'visible' });
    // A port nothing listens on: the list is removed again before any check uses it.
    await list.fill('office = http://user:pw@127.0.0.1:9');
    // An extra browser too: it becomes a fetch method on the edit page.
    await page.locator('form#settings-form textarea[name=extra_browsers]').fill('remote = ws://127.0.0.1:9/devtools/browser/x');
    await page.click('form#settings-form button[type=submit]');
    await page.locator('#toasts .toast', { hasText: 'Settings saved' }).last().waitFor({ state: 'visible' });
    // Read as the dashboard reads it (its session, its header).
    const stored = await waitUntil('the extra browser to be stored', async () => {
      const s = await page.evaluate(async () => {
        const r = await fetch('/ui/settings', { headers: { 'x-changewatch-ui': '1' } });
        return r.json();
      });
      return (s.extra_browsers ?? []).length === 1 && s;
    });
    assert(
      sameJson(stored.extra_browsers, [{ browser_name: 'remote', browser_connection_url: 'ws://127.0.0.1:9/devtools/browser/x' }]),
      `the extra browser is saved as typed (got ${JSON.stringify(stored.extra_browsers)})`,
    );
    await waitForPage(page, 'the default proxy choices to list the new proxy', () =>
      [...document.querySelectorAll('form#settings-form select[name=proxy] option')].some((o) => o.value === 'ui-0office'),
    );

    await page.evaluate((u) => {
      location.hash = `#/edit/${u}`;
    }, uuid);
    const choice = page.locator('form#edit-form select[name=proxy]');
    await choice.waitFor({ state: 'visible' });
    const options = await choice.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert(
      JSON.stringify(options) === JSON.stringify(['', 'ui-0office', 'no-proxy']),
      `the edit page offers the list's keys (got ${JSON.stringify(options)})`,
    );
    const methods = await page
      .locator('form#edit-form select[name=fetch_backend] option')
      .evaluateAll((os) => os.map((o) => o.value));
    assert(methods.includes('extra_browser_remote'), `the extra browser is a fetch method (got ${JSON.stringify(methods)})`);
    await choice.selectOption('no-proxy');
    await page.click('form#edit-form button[type=submit]');
    await page.locator('#toasts .toast', { hasText: 'Watch saved' }).last().waitFor({ state: 'visible' });
    const saved = await waitUntil('the proxy choice to be stored', async () => {
      const w = await rest('GET', `/api/v1/watch/${uuid}`);
      return w.proxy === 'no-proxy' && w;
    });
    assert(saved.proxy === 'no-proxy', 'the watch goes direct');

    // Back to no list, so the later steps' checks go direct as before.
    await page.click('.mainnav a[data-route=settings]');
    await list.waitFor({ state: 'visible' });
    await list.fill('');
    await page.click('form#settings-form button[type=submit]');
    await page.locator('#toasts .toast', { hasText: 'Settings saved' }).last().waitFor({ state: 'visible' });
    const settings = await rest('GET', '/ui/settings');
    assert(settings.extra_proxies.length === 0, `the list is empty again (got ${JSON.stringify(settings.extra_proxies)})`);
    await assertNoReload('after the proxy settings');
  });

  const stepRow = (n) => `form#edit-form ol.browser-steps > li.step-row[data-step="${n}"]`;
  const expectedSteps = [
    { operation: 'Enter text in field', selector: '#q', optional_value: 'hello' },
    { operation: 'Click element', selector: '#go', optional_value: null },
  ];
  const openEdit = async (u) => {
    await page.evaluate((id) => {
      location.hash = `#/edit/${id}`;
    }, u);
    await page.locator('form#edit-form select[name=fetch_backend]').waitFor({ state: 'visible' });
  };

  await runStep('edit page: fetch method, browser wait, JavaScript and browser steps are saved as set', async () => {
    // Paused: saved with the Chrome fetcher, it is never checked during this test.
    ({ uuid: stepsUuid } = await rest('POST', '/api/v1/watch', {
      url: fixture.otherUrl,
      title: 'Browser steps watch',
      paused: true,
    }));
    await openEdit(stepsUuid);
    const backend = page.locator('form#edit-form select[name=fetch_backend]');
    const options = await backend.locator('option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    assert(
      sameJson(options, [
        ['system', 'System settings default'],
        ['html_requests', 'Basic fast Plaintext/HTTP Client'],
        ['html_webdriver', 'Chrome/JavaScript'],
        // The settings' extra browser from the proxies step.
        ['extra_browser_remote', 'remote (extra browser)'],
      ]),
      `upstream's fetch methods and the extra browser are offered (got ${JSON.stringify(options)})`,
    );
    assert((await backend.inputValue()) === 'system', 'a new watch uses the system default');
    assert((await page.locator('form#edit-form li.step-row').count()) === 0, 'no steps yet');

    await backend.selectOption('html_webdriver');
    await page.fill('form#edit-form input[name=webdriver_delay]', '3');
    const js = "document.querySelector('#q').value = '';\nwindow.scrollTo(0, 0);";
    await page.fill('form#edit-form textarea[name=webdriver_js_execute_code]', js);

    // Three rows, the last removed and the second moved up: the list saves in the new order.
    const add = page.locator('form#edit-form button[data-action=step-add]');
    await add.click();
    await page.selectOption(`${stepRow(1)} select.step-operation`, 'Click element');
    assert(await page.locator(`${stepRow(1)} input.step-value`).isDisabled(), '"Click element" takes no value');
    assert(!(await page.locator(`${stepRow(1)} input.step-value`).isVisible()), 'the unused value input is hidden');
    await page.fill(`${stepRow(1)} input.step-selector`, '#go');
    await add.click();
    await page.selectOption(`${stepRow(2)} select.step-operation`, 'Enter text in field');
    await page.fill(`${stepRow(2)} input.step-selector`, '#q');
    await page.fill(`${stepRow(2)} input.step-value`, 'hello');
    await add.click();
    await page.selectOption(`${stepRow(3)} select.step-operation`, 'Press Enter');
    assert(
      (await page.locator(`${stepRow(3)} input.step-selector`).isDisabled()) &&
        (await page.locator(`${stepRow(3)} input.step-value`).isDisabled()),
      '"Press Enter" takes neither a selector nor a value',
    );
    await page.click(`${stepRow(3)} button[data-action=step-remove]`);
    await page.click(`${stepRow(2)} button[data-action=step-up]`);
    assert((await page.locator('form#edit-form li.step-row').count()) === 2, 'two rows are left');
    assert(
      (await page.inputValue('form#edit-form select[name="browser_steps.0.operation"]')) === 'Enter text in field' &&
        (await page.inputValue('form#edit-form input[name="browser_steps.1.selector"]')) === '#go',
      'the rows are renumbered after the move',
    );
    assert(await page.locator(`${stepRow(1)} button[data-action=step-up]`).isDisabled(), 'the first row cannot move up');

    // The plain HTTP client cannot run steps: the page says so while it is chosen.
    const warning = page.locator('form#edit-form .steps-warning');
    assert(!(await warning.isVisible()), 'no warning with the Chrome fetcher');
    await backend.selectOption('html_requests');
    await warning.waitFor({ state: 'visible' });
    await backend.selectOption('html_webdriver');
    await warning.waitFor({ state: 'hidden' });
    await screenshot(page, '12-edit-browser-steps.png');

    // The server's answer, not only the request: an earlier step's "Watch saved" toast may
    // still be showing, and the REST read below must come after this save.
    const put = page.waitForResponse(
      (r) => r.request().method() === 'PUT' && r.url().endsWith(`/api/v1/watch/${stepsUuid}`),
    );
    await page.click('form#edit-form button[type=submit]');
    const answer = await put;
    assert(answer.status() === 200, `the save is accepted (HTTP ${answer.status()})`);
    const sent = answer.request().postDataJSON();
    await page.locator('#toasts .toast', { hasText: 'Watch saved' }).last().waitFor({ state: 'visible' });
    assert(
      sameJson(Object.keys(sent).sort(), ['browser_steps', 'fetch_backend', 'webdriver_delay', 'webdriver_js_execute_code']),
      `only the changed fields are sent (got ${JSON.stringify(sent)})`,
    );
    assert(
      sent.browser_steps.every((st) => sameJson(Object.keys(st).sort(), ['operation', 'optional_value', 'selector'])),
      `every step carries its three keys (got ${JSON.stringify(sent.browser_steps)})`,
    );
    const w = await rest('GET', `/api/v1/watch/${stepsUuid}`);
    assert(w.fetch_backend === 'html_webdriver', `fetch_backend saved (got ${JSON.stringify(w.fetch_backend)})`);
    assert(w.webdriver_delay === 3, `webdriver_delay saved (got ${JSON.stringify(w.webdriver_delay)})`);
    assert(w.webdriver_js_execute_code === js, `the script saved as typed (got ${JSON.stringify(w.webdriver_js_execute_code)})`);
    assert(sameJson(w.browser_steps, expectedSteps), `exactly the two steps (got ${JSON.stringify(w.browser_steps)})`);
    await assertNoReload('after saving browser steps');
  });

  await runStep('edit page: a step the API refuses shows its message and is not saved', async () => {
    await openEdit(stepsUuid);
    await page.locator(stepRow(2)).waitFor({ state: 'visible' });
    assert((await page.inputValue('form#edit-form select[name=fetch_backend]')) === 'html_webdriver', 'the saved method is loaded');
    assert((await page.inputValue('form#edit-form input[name=webdriver_delay]')) === '3', 'the saved delay is loaded');
    assert((await page.inputValue(`${stepRow(2)} input.step-selector`)) === '#go', 'the saved steps are loaded');
    await page.click('form#edit-form button[data-action=step-add]');
    await page.selectOption(`${stepRow(3)} select.step-operation`, 'Click X,Y');
    assert(await page.locator(`${stepRow(3)} input.step-selector`).isDisabled(), '"Click X,Y" takes no selector');
    await page.fill(`${stepRow(3)} input.step-value`, 'left');

    const errorsBefore = consoleErrors.length;
    await page.click('form#edit-form button[type=submit]');
    const alert = page.locator('form#edit-form #edit-error');
    await alert.waitFor({ state: 'visible' });
    // Chromium logs every 4xx response as a console error: this one is the expected answer.
    const expected = new RegExp(`status of 400 .*/api/v1/watch/${stepsUuid}`);
    await waitUntil('the 400 to be logged', () => consoleErrors.slice(errorsBefore).some((e) => expected.test(e)));
    const during = consoleErrors.splice(errorsBefore);
    consoleErrors.push(...during.filter((e) => !expected.test(e)));
    const text = (await alert.textContent()) ?? '';
    assert(
      text.includes('browser_steps') && text.includes('step 3') && text.includes("'left'"),
      `the API's reason is shown (got "${text}")`,
    );
    assert(page.url().endsWith(`#/edit/${stepsUuid}`), 'the page stays on the form');
    const w = await rest('GET', `/api/v1/watch/${stepsUuid}`);
    assert(sameJson(w.browser_steps, expectedSteps), `the steps are unchanged (got ${JSON.stringify(w.browser_steps)})`);
  });

  await runStep('edit page: the step the last check failed at is marked', async () => {
    // Only a check sets browser_steps_last_error_step: the watch as the page loads it is
    // given one, so the marking is tested without running the browser fetcher.
    const watchUrl = `**/api/v1/watch/${stepsUuid}`;
    await page.route(watchUrl, async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const response = await route.fetch();
      const json = await response.json();
      json.browser_steps_last_error_step = 2;
      json.last_error = 'Browser step at position 2 could not run, check the watch, add a delay if necessary. Could not find the target.';
      return route.fulfill({ response, json });
    });
    try {
      await page.evaluate(() => {
        location.hash = '#/';
      });
      await openEdit(stepsUuid);
      const failed = page.locator('form#edit-form li.step-row.step-failed');
      await failed.waitFor({ state: 'visible' });
      assert((await failed.count()) === 1, 'one row is marked');
      assert((await failed.getAttribute('data-step')) === '2', 'the second row is marked');
      const note = (await failed.locator('.step-error-note').textContent()) ?? '';
      assert(note.includes('failed at this step') && note.includes('Could not find the target'), `the note says why (got "${note}")`);
      await screenshot(page, '13-edit-failed-step.png');
    } finally {
      await page.unroute(watchUrl);
    }
    await page.click('.mainnav a[data-route=list]');
    await page.waitForURL(`${BASE_URL}/#/`);
    await assertNoReload('after the browser steps pages');
  });

  await runStep('a failed change notification shows on the row, linked to the notification log', async () => {
    ({ uuid: notifyUuid } = await rest('POST', '/api/v1/watch', {
      url: fixture.notifyPageUrl,
      notification_urls: [fixture.hookUrl('/hook-reject')],
    }));
    await page.click('.mainnav a[data-route=list]');
    await page.waitForURL(`${BASE_URL}/#/`);
    await waitForRow(
      page,
      notifyUuid,
      'the first check of the notifying watch',
      (r) => r.lastChecked !== 'Not yet' && !r.classes.includes('checking-now') && !r.classes.includes('queued'),
    );
    fixture.setNotifyPage(html('Notify page', '<p>Stock: 2</p>'));
    const debugBefore = consoleDebug.length;
    await page.click(`${rowSel(notifyUuid)} button[data-action=recheck]`);
    await waitUntil('the change notification to reach the receiver', () => fixture.hooks('/hook-reject').length > 0);
    const link = page.locator(`${rowSel(notifyUuid)} td.status a.notification-error`);
    await link.waitFor({ state: 'visible' });
    const text = ((await link.textContent()) ?? '').trim();
    assert(text === 'Notification error detected, goto notification log.', `upstream's wording (got "${text}")`);
    assert((await link.getAttribute('href')) === '#/settings/notification-log', 'it links to the notification log');
    const row = await rowState(page, notifyUuid);
    assert(row.classes.includes('has-error'), `the row is marked as failing (classes ${row.classes.join(' ')})`);
    assert(
      (await page.locator(`${rowSel(notifyUuid)} td.status .error-text`).textContent()) === '',
      `no generic "Error" besides the link (status "${row.status}")`,
    );
    // The socket's notification_event is only logged, at debug level.
    await waitUntil('the notification_event debug line', () =>
      consoleDebug.slice(debugBefore).some((l) => l.includes('notification queued for')),
    );
    await screenshot(page, '8-notification-error.png');

    await link.click();
    await page.waitForURL('**/#/settings/notification-log');
    const entry = page.locator('#notification-log tr.log-entry[data-kind=change][data-outcome=failed]', {
      has: page.locator(`a.log-watch[href="#/edit/${notifyUuid}"]`),
    });
    await entry.first().waitFor({ state: 'visible' });
    const message = (await entry.first().locator('td.log-message').textContent()) ?? '';
    assert(message.includes('400'), `the failure's reason is logged (got "${message}")`);
    await screenshot(page, '9-notification-log-failed.png');
    await page.click('.mainnav a[data-route=list]');
    await page.waitForURL(`${BASE_URL}/#/`);
    await assertNoReload('after the failed notification');
  });

  await runStep('a browser watch\'s screenshot shows on its preview and history pages; a plain watch has none', async () => {
    const created = await rest('POST', '/api/v1/watch', {
      url: fixture.otherUrl,
      title: 'Browser-checked fixture',
      fetch_backend: 'html_webdriver',
    });
    const shotUuid = created.uuid;
    await waitUntil('the browser check to store a snapshot', async () => {
      const w = await rest('GET', `/api/v1/watch/${shotUuid}`);
      return w.history_n >= 1 ? w : null;
    });
    const imageSize = () => {
      const img = document.querySelector('#screenshot:not([hidden]) img#screenshot-image');
      return img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
    };
    for (const route of ['preview', 'history']) {
      await page.goto(`${BASE_URL}/#/${route}/${shotUuid}`);
      const size = await (await waitForPage(page, `the screenshot on the ${route} page`, imageSize)).jsonValue();
      assert(size[0] === 1280, `the screenshot is the browser's 1280 px wide page (got ${size.join('x')})`);
    }
    await screenshot(page, '10-screenshot.png');
    // The plain watch from the first steps was fetched without a browser: no panel.
    await page.goto(`${BASE_URL}/#/preview/${uuid}`);
    await waitForPage(page, 'the plain watch\'s preview text', () =>
      (document.querySelector('#preview-text')?.textContent ?? '').includes('Price'),
    );
    await page.waitForTimeout(300);
    assert(await page.locator('#screenshot').isHidden(), 'a plain watch shows no screenshot panel');
    await page.goto(`${BASE_URL}/#/`);
    await rest('DELETE', `/api/v1/watch/${shotUuid}`);
  });

  await runStep('restock: the edit page makes a watch a restock one with its rules; the list shows stock and price live', async () => {
    const { uuid: kettle } = await rest('POST', '/api/v1/watch', { url: fixture.productUrl, title: 'Kettle watch' });
    await page.evaluate(() => {
      location.hash = '#/';
    });
    await waitForRow(page, kettle, 'the text watch checked once', (r) => RECENT.test(r.lastChecked ?? ''));
    assert(
      !(await page.locator('table.watch-table').evaluate((t) => t.classList.contains('has-restock'))),
      'no restock column without a restock watch',
    );

    await openEdit(kettle);
    const restockBox = page.locator('form#edit-form .restock-settings');
    assert(!(await restockBox.isVisible()), 'the restock settings are hidden for a text watch');
    await page.selectOption('form#edit-form select[name=processor]', 'restock_diff');
    await restockBox.waitFor({ state: 'visible' });
    assert(
      (await page.inputValue('form#edit-form select[name="processor_config_restock_diff.in_stock_processing"]')) === 'in_stock_only' &&
        (await page.isChecked('form#edit-form input[name="processor_config_restock_diff.follow_price_changes"]')),
      "upstream's defaults are shown",
    );
    await page.selectOption('form#edit-form select[name="processor_config_restock_diff.in_stock_processing"]', 'all_changes');
    await page.fill('form#edit-form input[name="processor_config_restock_diff.price_change_threshold_percent"]', '5');
    const put = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith(`/api/v1/watch/${kettle}`));
    await page.click('form#edit-form button[type=submit]');
    const answer = await put;
    assert(answer.status() === 200, `the save is accepted (HTTP ${answer.status()})`);
    const sent = answer.request().postDataJSON();
    assert(
      sameJson(Object.keys(sent).sort(), ['processor', 'processor_config_restock_diff']),
      `only the processor and its settings are sent (got ${JSON.stringify(sent)})`,
    );
    const w = await rest('GET', `/api/v1/watch/${kettle}`);
    assert(w.processor === 'restock_diff', `processor saved (got ${JSON.stringify(w.processor)})`);
    assert(
      w.processor_config_restock_diff.in_stock_processing === 'all_changes' &&
        w.processor_config_restock_diff.price_change_threshold_percent === 5 &&
        w.processor_config_restock_diff.follow_price_changes === true,
      `the rules saved as set (got ${JSON.stringify(w.processor_config_restock_diff)})`,
    );

    // Back on the list (the save navigates there): the column appears, then fills in live.
    const cell = page.locator(`${rowSel(kettle)} td.col-restock-price`);
    await cell.waitFor({ state: 'visible' });
    await rest('GET', `/api/v1/watch/${kettle}?recheck=1`);
    await waitForPage(
      page,
      'the row in stock at 100 EUR',
      (sel) => /In stock/.test(document.querySelector(sel)?.textContent ?? '') && /100 EUR/.test(document.querySelector(sel)?.textContent ?? ''),
      `${rowSel(kettle)} td.col-restock-price`,
    );
    fixture.setProduct(false, '90.00');
    await rest('GET', `/api/v1/watch/${kettle}?recheck=1`);
    await waitForPage(
      page,
      'the row out of stock at 90 EUR, 10 % down',
      (sel) => {
        const text = document.querySelector(sel)?.textContent ?? '';
        return /Not in stock/.test(text) && /90 EUR/.test(text) && /▼ -10%/.test(text);
      },
      `${rowSel(kettle)} td.col-restock-price`,
    );
    const row = await rowState(page, kettle);
    assert(row.classes.includes('not-in-stock') && row.classes.includes('has-restock-info'), `upstream's row classes (got ${row.classes})`);
    await screenshot(page, '13-restock-row.png');
    await assertNoReload('after the restock step');
  });

  await runStep('import page: a URL list imports its good line and keeps the bad one; a Distill.io export is read', async () => {
    await page.click('.mainnav a[data-route=import]');
    const listUrl = `${fixture.otherUrl}?imported=list`;
    await page.locator('#import-urls').fill(`${listUrl} e2e-import\nnot a url`);
    await page.click('#import-submit');
    await page.locator('#import-summary', { hasText: '1 imported from list, 1 skipped.' }).waitFor({ state: 'visible' });
    assert((await page.locator('#import-urls').inputValue()) === 'not a url', 'the skipped line stays in the box');
    assert(await page.locator('#import-report li.skipped', { hasText: 'Row 2 (not)' }).isVisible(), 'the skipped row is listed with its reason');
    const all = await rest('GET', '/api/v1/watch');
    const imported = Object.entries(all).find(([, w]) => w.url === listUrl);
    assert(imported, `the listed URL is a watch (got ${JSON.stringify(Object.values(all).map((w) => w.url))})`);
    const tags = await rest('GET', '/api/v1/tags');
    const watch = await rest('GET', `/api/v1/watch/${imported[0]}`);
    assert(sameJson(watch.tags.map((t) => tags[t].title), ['e2e-import']), `the line's tag is set (got ${JSON.stringify(watch.tags)})`);

    await page.click('#import-tab-distill');
    const distillUrl = `${fixture.otherUrl}?imported=distill`;
    const config = JSON.stringify({ selections: [{ frames: [{ includes: [{ type: 'css', expr: 'p' }] }] }] });
    await page.locator('#import-distill').fill(JSON.stringify({ data: [{ name: 'From Distill', uri: distillUrl, config, tags: [] }] }));
    await page.click('#import-submit');
    await page.locator('#import-summary', { hasText: '1 imported from Distill.io, 0 skipped.' }).waitFor({ state: 'visible' });
    const after = await rest('GET', '/api/v1/watch');
    const fromDistill = Object.entries(after).find(([, w]) => w.url === distillUrl);
    assert(fromDistill, 'the Distill.io monitor is a watch');
    const w = await rest('GET', `/api/v1/watch/${fromDistill[0]}`);
    assert(w.title === 'From Distill' && sameJson(w.include_filters, ['p']), `title and filter set (got ${JSON.stringify([w.title, w.include_filters])})`);
    await screenshot(page, '15-import.png');
    await assertNoReload('after the import step');
  });

  await runStep('phone width (375 px): list, settings, notification log, edit and import pages render without horizontal overflow', async () => {
    const phoneContext = await browser.newContext({ viewport: { width: 375, height: 740 } });
    const phone = await phoneContext.newPage();
    currentPage = phone;
    phone.setDefaultTimeout(ACTION_TIMEOUT_MS);
    watchPageErrors(phone, 'phone');
    await phone.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    await phone.locator(rowSel(uuid)).waitFor({ state: 'visible' });
    await phone.locator(rowSel(evilUuid)).waitFor({ state: 'visible' });
    await phone.locator(`${rowSel(notifyUuid)} a.notification-error`).waitFor({ state: 'visible' });
    await assertNoOverflow(phone, 375, 'the watch list');
    // The row's actions must still be reachable on a phone.
    assert(await phone.locator(`${rowSel(uuid)} button[data-action=recheck]`).isVisible(), 'row actions are visible');
    await screenshot(phone, '5-phone.png');

    // The settings page with a test result shown, and the notification log.
    await phone.evaluate(() => {
      location.hash = '#/settings';
    });
    await phone
      .locator('form#settings-form textarea[name=notification_urls]')
      .fill(fixture.hookUrl('/hook-phone-with-a-rather-long-path/for/wrapping'));
    await phone.click('form#settings-form button[data-action=send-test-notification]');
    await phone.locator('.notify-test-status', { hasText: 'Test notification sent' }).waitFor({ state: 'visible' });
    await assertNoOverflow(phone, 375, 'the settings page');
    await screenshot(phone, '10-phone-settings.png');
    await phone.click('form#settings-form a.notification-log-link');
    await phone.locator('#notification-log tr.log-entry').first().waitFor({ state: 'visible' });
    await assertNoOverflow(phone, 375, 'the notification log');
    await screenshot(phone, '11-phone-notification-log.png');
    // The edit page with its browser-steps rows.
    await phone.evaluate((u) => {
      location.hash = `#/edit/${u}`;
    }, stepsUuid);
    await phone.locator('form#edit-form li.step-row[data-step="2"]').waitFor({ state: 'visible' });
    await assertNoOverflow(phone, 375, 'the edit page');
    await screenshot(phone, '14-phone-edit.png');
    // The import page with the custom .xlsx mapping's table open.
    await phone.evaluate(() => {
      location.hash = '#/import';
    });
    await phone.click('#import-tab-xlsx');
    await phone.selectOption('#import-xlsx-mapping', 'custom');
    await phone.locator('table.import-columns').waitFor({ state: 'visible' });
    await assertNoOverflow(phone, 375, 'the import page');
    await screenshot(phone, '16-phone-import.png');
    currentPage = page;
    await phoneContext.close();
  });

  await runStep('no page errors, no reloads', async () => {
    await assertNoReload('during the whole scenario');
    assert(pageErrors.length === 0, `no uncaught page errors:\n${pageErrors.join('\n')}`);
    assert(consoleErrors.length === 0, `no console errors:\n${consoleErrors.join('\n')}`);
  });

  await context.close();
}

process.exitCode = await main();
