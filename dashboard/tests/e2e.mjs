// Browser end-to-end test of the changewatch dashboard.
//
// Drives the real dashboard in Debian's Chromium against a running `changewatch serve`
// (started by the caller) and a fixture web site served by this script, and checks that the
// list stays live without reloads: add -> checked -> changed -> diff -> viewed -> paused, plus
// HTML escaping of titles and a phone-width layout without horizontal overflow.
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

function html(title, body) {
  return `<!doctype html><html><head><title>${title}</title></head><body>${body}</body></html>`;
}

function shopPage(price) {
  return html('Fixture shop', `<p>${price}</p>`);
}

function startFixture() {
  const state = {
    shop: shopPage('Price: 10'),
    held: null, // { promise, release } while responses to / are held
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

  await runStep('phone width (375 px): the list renders without horizontal overflow', async () => {
    const phoneContext = await browser.newContext({ viewport: { width: 375, height: 740 } });
    const phone = await phoneContext.newPage();
    currentPage = phone;
    phone.setDefaultTimeout(ACTION_TIMEOUT_MS);
    watchPageErrors(phone, 'phone');
    await phone.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    await phone.locator(rowSel(uuid)).waitFor({ state: 'visible' });
    await phone.locator(rowSel(evilUuid)).waitFor({ state: 'visible' });
    const widths = await phone.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      // The widest element, to name the culprit if the page overflows.
      widest: Array.from(document.querySelectorAll('body *'))
        .map((el) => ({ el, right: el.getBoundingClientRect().right }))
        .sort((a, b) => b.right - a.right)
        .slice(0, 1)
        .map(({ el, right }) => `${el.tagName.toLowerCase()}.${Array.from(el.classList).join('.')} right=${Math.round(right)}`)[0],
    }));
    assert(widths.scroll <= 375, `no horizontal overflow at 375 px (scrollWidth=${widths.scroll}, widest: ${widths.widest})`);
    // The row's actions must still be reachable on a phone.
    assert(await phone.locator(`${rowSel(uuid)} button[data-action=recheck]`).isVisible(), 'row actions are visible');
    await screenshot(phone, '5-phone.png');
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
