// Watch list (#/): quick-add form, counters, tag tabs, search, paging, bulk bar and the table
// of watches, kept live from the store (socket events update rows in place).

import * as api from '../api';
import { externalLink, h, replace, select, setText } from '../dom';
import { NOTIFICATION_LOG_HASH } from '../notify';
import { bulkOperation, deleteWatch, rowOperation, tagUuidForTitle } from '../ops';
import { restockCell } from '../restock';
import { feedUrl } from '../rss';
import { navigate, type View } from '../router';
import { isConnected } from '../socket';
import { displayName, store, type StoreEvent } from '../store';
import { formatDate, timeago } from '../time';
import { toast, toastError } from '../toast';
import { BULK_OPS, type BulkOp, type WatchRow } from '../types';

const PAGE_SIZE = 50;
/** How often relative times are recomputed locally. */
const TICK_MS = 30_000;
/** While the socket is down the list is polled instead, so it still changes without a reload. */
const POLL_MS = 15_000;

/** Filter state survives leaving and re-entering the list. */
const filters = { tag: '', query: '', page: 1 };

/** State classes of a row, toggled live (stable hooks for tests and CSS). */
const ROW_FLAGS: ReadonlyArray<[string, (r: WatchRow) => boolean]> = [
  ['checking-now', (r) => r.checking_now],
  ['queued', (r) => r.queued],
  ['unviewed', (r) => r.unviewed],
  ['has-error', (r) => r.has_error],
  ['paused', (r) => r.paused],
  ['notification-muted', (r) => r.notification_muted],
  // Upstream's row classes for restock rows.
  ['has-restock-info', (r) => r.processor === 'restock_diff' && (r.restock?.in_stock ?? null) !== null],
  ['in-stock', (r) => r.processor === 'restock_diff' && r.restock?.in_stock === true],
  ['not-in-stock', (r) => r.processor === 'restock_diff' && r.restock?.in_stock === false],
];

interface RowRefs {
  tr: HTMLTableRowElement;
  select: HTMLInputElement;
  favicon: HTMLTableCellElement;
  title: HTMLTableCellElement;
  tags: HTMLTableCellElement;
  lastChecked: HTMLTableCellElement;
  lastChanged: HTMLTableCellElement;
  /** Upstream's "Restock & Price" column, shown while any watch is a restock_diff one. */
  restock: HTMLTableCellElement;
  statusText: HTMLElement;
  errorText: HTMLElement;
  /** The watch's last notification failure, a link to the notification log. */
  notificationError: HTMLAnchorElement;
  pauseBtn: HTMLButtonElement;
  muteBtn: HTMLButtonElement;
  /** Cache keys so unchanged cells are not rebuilt on every event. */
  titleKey: string;
  tagsKey: string;
  faviconKey: string;
  restockKey: string;
}

// ---------------------------------------------------------------------------------------
// Favicons: fetched with the UI header (an <img src> cannot send it) and kept as object URLs.

const faviconCache = new Map<string, { version: number; url: string | null; pending?: Promise<string | null> }>();

function faviconUrl(uuid: string): Promise<string | null> {
  const version = store.faviconVersions.get(uuid) ?? 0;
  const cached = faviconCache.get(uuid);
  if (cached && cached.version === version) return cached.pending ?? Promise.resolve(cached.url);
  if (cached?.url) URL.revokeObjectURL(cached.url);
  const entry: { version: number; url: string | null; pending?: Promise<string | null> } = { version, url: null };
  entry.pending = api
    .getFavicon(uuid)
    .then((blob) => (blob.type.startsWith('image/') ? URL.createObjectURL(blob) : null))
    .catch(() => null)
    .then((url) => {
      entry.url = url;
      delete entry.pending;
      return url;
    });
  faviconCache.set(uuid, entry);
  return entry.pending;
}

function hostInitial(url: string): string {
  try {
    return new URL(url).hostname.replace(/^www\./, '').charAt(0).toUpperCase() || '?';
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------------------------------

function relative(epoch: number, serverText: string): string {
  // Local computation keeps the text current between events; the server's text is the
  // fallback for payloads without the epoch.
  // Check and change times are in the past by definition. The server clock is only estimated
  // to the second (Date header) and stamps are whole seconds, so a fresh check can look up to
  // a second ahead of "now": that is "just now", not "a while" in the future (the server
  // clamps its own texts the same way).
  if (epoch > 0) {
    const now = api.serverNow();
    return timeago(Math.min(epoch, now), now);
  }
  return serverText || 'Not yet';
}

function matchesFilters(row: WatchRow): boolean {
  if (filters.tag && !row.tags.includes(filters.tag)) return false;
  const q = filters.query.trim().toLowerCase();
  if (!q) return true;
  return [row.title ?? '', row.page_title ?? '', row.url].some((s) => s.toLowerCase().includes(q));
}

export const listView: View = ({ root, signal }) => {
  const selected = new Set<string>();
  const rowRefs = new Map<string, RowRefs>();

  // --- counters ---------------------------------------------------------------------
  const counter = (cls: string, label: string, hint: string): HTMLElement =>
    h('span', { class: 'stat', title: hint }, h('span', { class: cls }, '0'), ` ${label}`);
  const stats = h(
    'div',
    { class: 'stats', 'aria-label': 'Live counters' },
    counter('queue-size-int', 'queued', 'Checks waiting in the queue'),
    counter('checking-now-int', 'checking', 'Checks running now'),
    counter('unread-count-int', 'unread', 'Watches with changes not viewed yet'),
    counter('error-count-int', 'errors', 'Watches whose last check failed'),
  );

  // --- quick add -----------------------------------------------------------------------
  const tagList = h('datalist', { id: 'tag-titles' });
  const addError = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const urlInput = h('input', {
    name: 'url',
    type: 'text',
    inputmode: 'url',
    autocomplete: 'off',
    placeholder: 'https://example.com/page-to-watch',
    'aria-label': 'URL to watch',
    required: true,
  });
  const tagInput = h('input', {
    name: 'tag',
    type: 'text',
    list: 'tag-titles',
    autocomplete: 'off',
    placeholder: 'Tag (optional)',
    'aria-label': 'Tag',
  });
  const addButton = h('button', { type: 'submit', class: 'primary' }, 'Watch');
  const quickAdd = h(
    'form',
    { id: 'quick-add', class: 'quick-add' },
    urlInput,
    tagInput,
    tagList,
    addButton,
    addError,
  );
  quickAdd.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void submitQuickAdd();
  });

  async function submitQuickAdd(): Promise<void> {
    const url = urlInput.value.trim();
    const tagTitle = tagInput.value.trim();
    addError.hidden = true;
    if (!url) {
      showAddError('Enter a URL to watch.');
      return;
    }
    addButton.disabled = true;
    try {
      const tags = tagTitle ? [await tagUuidForTitle(tagTitle)] : [];
      await api.createWatch(tags.length ? { url, tags } : { url });
      toast(`Now watching ${url}`, 'success');
      urlInput.value = '';
      await store.refresh().catch(() => undefined);
    } catch (err) {
      showAddError(api.errorMessage(err));
      toastError(api.errorMessage(err));
    } finally {
      addButton.disabled = false;
    }
  }

  function showAddError(message: string): void {
    addError.textContent = message;
    addError.hidden = false;
  }

  // --- toolbar: tag tabs + search ---------------------------------------------------------
  const tabs = h('nav', { class: 'tag-tabs', 'aria-label': 'Filter by tag' });
  tabs.addEventListener('click', (ev) => {
    const btn = (ev.target as Element).closest<HTMLButtonElement>('button[data-tag]');
    if (!btn) return;
    filters.tag = btn.dataset['tag'] ?? '';
    filters.page = 1;
    renderTabs();
    renderTable();
  });
  const search = h('input', {
    type: 'search',
    name: 'q',
    class: 'search',
    placeholder: 'Search title or URL',
    'aria-label': 'Search watches',
    value: filters.query,
  });
  search.addEventListener('input', () => {
    filters.query = search.value;
    filters.page = 1;
    renderTable();
  });
  const feedLink = h('a', { class: 'feed-link', id: 'rss-feed-link', hidden: true }, 'RSS');
  const toolbar = h('div', { class: 'toolbar' }, tabs, search, feedLink);

  // --- bulk bar ---------------------------------------------------------------------------
  const bulkCount = h('span', { class: 'bulk-count' });
  const opSelect = select(
    'op',
    BULK_OPS.map((o) => ({ value: o.op, label: o.label })),
    'recheck',
    { 'aria-label': 'Operation' },
  );
  const tagSelect = h('select', { name: 'extra_data', 'aria-label': 'Tag to assign', hidden: true });
  const bulkBar = h(
    'form',
    { id: 'bulk-bar', class: 'bulk-bar', hidden: true },
    bulkCount,
    opSelect,
    tagSelect,
    h('button', { type: 'submit', class: 'primary', 'data-action': 'apply' }, 'Apply'),
    h('button', { type: 'button', class: 'link', onclick: () => clearSelection() }, 'Clear selection'),
  );
  opSelect.addEventListener('change', () => {
    tagSelect.hidden = opSelect.value !== 'assign-tag';
  });
  bulkBar.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void applyBulk();
  });

  async function applyBulk(): Promise<void> {
    const op = opSelect.value as BulkOp;
    const uuids = Array.from(selected);
    if (uuids.length === 0) return;
    let extra = '';
    if (op === 'assign-tag') {
      extra = tagSelect.value;
      if (!extra) {
        toastError('Choose a tag to assign (create one with the quick-add form or the API).');
        return;
      }
    }
    const n = uuids.length === 1 ? '1 watch' : `${uuids.length} watches`;
    if (op === 'delete' && !window.confirm(`Delete ${n}? This cannot be undone.`)) return;
    if (op === 'clear-history' && !window.confirm(`Clear the history of ${n}?`)) return;
    clearSelection();
    await bulkOperation(op, uuids, extra);
  }

  function clearSelection(): void {
    selected.clear();
    for (const refs of rowRefs.values()) refs.select.checked = false;
    updateBulkBar();
  }

  function updateBulkBar(): void {
    // Forget selections of watches that no longer exist.
    for (const uuid of Array.from(selected)) if (!store.rows.has(uuid)) selected.delete(uuid);
    bulkBar.hidden = selected.size === 0;
    setText(bulkCount, `${selected.size} selected`);
    const onPage = Array.from(rowRefs.keys());
    const ticked = onPage.filter((u) => selected.has(u)).length;
    selectAll.checked = onPage.length > 0 && ticked === onPage.length;
    selectAll.indeterminate = ticked > 0 && ticked < onPage.length;
  }

  // --- table ----------------------------------------------------------------------------
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all watches on this page' });
  selectAll.addEventListener('change', () => {
    for (const [uuid, refs] of rowRefs) {
      refs.select.checked = selectAll.checked;
      if (selectAll.checked) selected.add(uuid);
      else selected.delete(uuid);
    }
    updateBulkBar();
  });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'watch-table' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { class: 'select', scope: 'col' }, selectAll),
        h('th', { class: 'favicon', scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Icon')),
        h('th', { class: 'title', scope: 'col' }, 'Watch'),
        h('th', { class: 'tags', scope: 'col' }, 'Tags'),
        h('th', { class: 'col-restock-price', scope: 'col' }, 'Restock & Price'),
        h('th', { class: 'last-checked', scope: 'col' }, 'Last checked'),
        h('th', { class: 'last-changed', scope: 'col' }, 'Last changed'),
        h('th', { class: 'status', scope: 'col' }, 'Status'),
        h('th', { class: 'actions', scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
      ),
    ),
    tbody,
  );
  tbody.addEventListener('click', (ev) => {
    const btn = (ev.target as Element).closest<HTMLButtonElement>('button[data-action]');
    const uuid = btn?.closest<HTMLTableRowElement>('tr[data-uuid]')?.dataset['uuid'];
    if (!btn || !uuid) return;
    void onAction(btn.dataset['action'] ?? '', uuid, btn);
  });
  tbody.addEventListener('change', (ev) => {
    const box = ev.target as HTMLInputElement;
    if (!box.classList.contains('row-select')) return;
    const uuid = box.closest<HTMLTableRowElement>('tr[data-uuid]')?.dataset['uuid'];
    if (!uuid) return;
    if (box.checked) selected.add(uuid);
    else selected.delete(uuid);
    updateBulkBar();
  });

  async function onAction(action: string, uuid: string, btn: HTMLButtonElement): Promise<void> {
    switch (action) {
      case 'recheck':
      case 'pause':
      case 'mute':
        btn.disabled = true;
        try {
          await rowOperation(action, uuid);
        } finally {
          btn.disabled = false;
        }
        return;
      case 'edit':
      case 'history':
      case 'preview':
        navigate(`#/${action}/${uuid}`);
        return;
      case 'delete': {
        const row = store.rows.get(uuid);
        const name = row ? displayName(row) : uuid;
        if (window.confirm(`Delete the watch "${name}"?`)) await deleteWatch(uuid);
        return;
      }
      default:
        return;
    }
  }

  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  pager.addEventListener('click', (ev) => {
    const btn = (ev.target as Element).closest<HTMLButtonElement>('button[data-page]');
    if (!btn) return;
    filters.page = Number(btn.dataset['page']) || 1;
    renderTable();
    table.scrollIntoView({ block: 'start' });
  });

  root.append(
    h(
      'section',
      { class: 'list-head' },
      h('h1', null, 'Watches'),
      stats,
    ),
    quickAdd,
    toolbar,
    bulkBar,
    h('div', { class: 'table-wrap' }, table),
    pager,
  );

  // --- rendering ------------------------------------------------------------------------
  function buildRow(row: WatchRow): RowRefs {
    const cell = (cls: string, label: string): HTMLTableCellElement =>
      h('td', { class: cls, 'data-label': label });
    const selectBox = h('input', {
      type: 'checkbox',
      class: 'row-select',
      'aria-label': `Select ${displayName(row)}`,
      checked: selected.has(row.uuid),
    });
    const action = (name: string, label: string, cls = ''): HTMLButtonElement =>
      h('button', { type: 'button', class: `action action-${name} ${cls}`.trim(), 'data-action': name }, label);
    const pauseBtn = action('pause', 'Pause');
    const muteBtn = action('mute', 'Mute');
    const statusText = h('span', { class: 'status-text' });
    const errorText = h('span', { class: 'error-text' });
    const notificationError = h('a', { class: 'notification-error', href: NOTIFICATION_LOG_HASH, hidden: true });
    const refs: RowRefs = {
      tr: h('tr', { 'data-uuid': row.uuid, class: 'watch-row' }),
      select: selectBox,
      favicon: cell('favicon', ''),
      title: cell('title', ''),
      tags: cell('tags', 'Tags'),
      lastChecked: cell('last-checked', 'Checked'),
      lastChanged: cell('last-changed', 'Changed'),
      restock: cell('col-restock-price', 'Restock & Price'),
      statusText,
      errorText,
      notificationError,
      pauseBtn,
      muteBtn,
      titleKey: '',
      tagsKey: '',
      faviconKey: '',
      restockKey: '',
    };
    const status = cell('status', 'Status');
    status.append(statusText, errorText, notificationError);
    const actions = h(
      'td',
      { class: 'actions' },
      action('recheck', 'Recheck'),
      pauseBtn,
      muteBtn,
      action('edit', 'Edit'),
      action('history', 'History'),
      action('preview', 'Preview'),
      action('delete', 'Delete', 'danger'),
    );
    refs.tr.append(
      h('td', { class: 'select' }, selectBox),
      refs.favicon,
      refs.title,
      refs.tags,
      refs.restock,
      refs.lastChecked,
      refs.lastChanged,
      status,
      actions,
    );
    updateRow(refs, row);
    return refs;
  }

  function updateRow(refs: RowRefs, row: WatchRow): void {
    const { tr } = refs;
    for (const [cls, test] of ROW_FLAGS) tr.classList.toggle(cls, test(row));

    // Title cell: name (linked to the site when the URL is http/https), URL below it.
    const name = displayName(row);
    const href = row.link && row.link !== 'DISABLED' ? row.link : row.url;
    const titleKey = JSON.stringify([name, href, row.url, row.paused, row.notification_muted]);
    if (refs.titleKey !== titleKey) {
      refs.titleKey = titleKey;
      replace(
        refs.title,
        externalLink(href, name, 'watch-link'),
        name !== row.url ? h('div', { class: 'watch-url' }, row.url) : null,
        row.paused ? h('span', { class: 'badge badge-paused' }, 'paused') : null,
        row.notification_muted ? h('span', { class: 'badge badge-muted' }, 'muted') : null,
      );
      refs.select.setAttribute('aria-label', `Select ${name}`);
    }

    const tagsKey = row.tags.map((t) => `${t}:${store.tagTitle(t) ?? ''}`).join('|');
    if (refs.tagsKey !== tagsKey) {
      refs.tagsKey = tagsKey;
      replace(
        refs.tags,
        row.tags
          .map((t) => store.tagTitle(t))
          .filter((t): t is string => t !== undefined)
          .map((t) => h('span', { class: 'tag-chip' }, t)),
      );
    }
    refs.tags.classList.toggle('is-empty', refs.tags.childElementCount === 0);

    updateFavicon(refs, row);
    updateTimes(refs, row);
    updateRestock(refs, row);

    const comment = store.statusComments.get(row.uuid) ?? '';
    let status = '';
    if (comment) status = comment;
    else if (row.checking_now) status = 'Checking…';
    else if (row.queued) status = 'Queued';
    setText(refs.statusText, status);
    // The check's error as text; a notification failure instead links to the notification log
    // (upstream: "Notification error detected, goto notification log.").
    const notificationError = row.notification_error;
    const checkError = typeof row.last_error === 'string' ? row.last_error : '';
    const error = row.has_error ? checkError || (notificationError ? '' : 'Error') : '';
    setText(refs.errorText, error);
    setText(refs.notificationError, notificationError);
    refs.notificationError.hidden = !notificationError;
    // Lets the stacked (mobile) layout hide an empty status line.
    refs.statusText.parentElement?.classList.toggle('is-empty', !status && !error && !notificationError);

    setText(refs.pauseBtn, row.paused ? 'Unpause' : 'Pause');
    refs.pauseBtn.setAttribute('aria-pressed', String(row.paused));
    setText(refs.muteBtn, row.notification_muted ? 'Unmute' : 'Mute');
    refs.muteBtn.setAttribute('aria-pressed', String(row.notification_muted));
    refs.select.checked = selected.has(row.uuid);
  }

  function updateRestock(refs: RowRefs, row: WatchRow): void {
    const cell = restockCell(row);
    const key = JSON.stringify(cell);
    if (refs.restockKey === key) return;
    refs.restockKey = key;
    refs.restock.classList.toggle('is-empty', cell === null);
    if (cell === null) {
      replace(refs.restock);
      return;
    }
    replace(
      refs.restock,
      h(
        'div',
        { class: 'restock-info-wrap' },
        h('span', { class: `restock-label ${cell.stockClass}`, title: 'Detecting restock and price' }, cell.stockLabel),
        cell.price ? h('span', { class: 'restock-label price', title: 'Price' }, cell.price) : null,
        cell.change ? h('span', { class: `price-change ${cell.changeClass}`, title: cell.changeTitle }, cell.change) : null,
      ),
    );
  }

  function updateTimes(refs: RowRefs, row: WatchRow): void {
    setText(refs.lastChecked, relative(row.last_checked, row.last_checked_text));
    const fetched = row.fetch_time > 0 ? ` (fetched in ${row.fetch_time.toFixed(2)} s)` : '';
    refs.lastChecked.title = row.last_checked ? formatDate(row.last_checked) + fetched : '';
    setText(refs.lastChanged, relative(row.last_changed, row.last_changed_text));
    refs.lastChanged.title = row.last_changed ? formatDate(row.last_changed) : '';
  }

  function updateFavicon(refs: RowRefs, row: WatchRow, force = false): void {
    const key = `${row.has_favicon}:${store.faviconVersions.get(row.uuid) ?? 0}:${hostInitial(row.url)}`;
    if (refs.faviconKey === key && !force) return;
    refs.faviconKey = key;
    const placeholder = h('span', { class: 'favicon-placeholder', 'aria-hidden': 'true' }, hostInitial(row.url));
    replace(refs.favicon, placeholder);
    if (!row.has_favicon) return;
    void faviconUrl(row.uuid).then((url) => {
      if (!url || signal.aborted || refs.faviconKey !== key) return;
      replace(refs.favicon, h('img', { src: url, alt: '', width: 16, height: 16, class: 'favicon-img' }));
    });
  }

  function renderCounters(): void {
    const c = store.counters;
    const set = (cls: string, v: number): void => {
      const el = stats.querySelector(`.${cls}`);
      if (el) setText(el, String(v));
      el?.parentElement?.classList.toggle('nonzero', v > 0);
    };
    set('queue-size-int', c.queue_size);
    set('checking-now-int', c.checking_now);
    set('unread-count-int', c.unread_changes_count);
    set('error-count-int', c.count_errors);
  }

  function renderTabs(): void {
    if (filters.tag && !store.tags.some((t) => t.uuid === filters.tag)) filters.tag = '';
    const tab = (uuid: string, label: string): HTMLButtonElement =>
      h(
        'button',
        {
          type: 'button',
          class: uuid === filters.tag ? 'tab active' : 'tab',
          'data-tag': uuid,
          'aria-pressed': String(uuid === filters.tag),
        },
        label,
      );
    replace(tabs, tab('', 'All'), store.tags.map((t) => tab(t.uuid, t.title || '(untitled)')));
    tabs.hidden = store.tags.length === 0;
    // The feed of unviewed changes, of the chosen tag when there is one (upstream's list icon).
    const feed = feedUrl('/rss', store.rssToken, filters.tag ? { tag: filters.tag } : {});
    feedLink.hidden = feed === '';
    if (feed) feedLink.setAttribute('href', feed);
    feedLink.title = filters.tag ? 'RSS feed of unviewed changes in this tag' : 'RSS feed of unviewed changes';
    replace(
      tagList,
      store.tags.map((t) => h('option', { value: t.title })),
    );
    const chosen = tagSelect.value;
    replace(
      tagSelect,
      h('option', { value: '' }, 'Choose a tag…'),
      store.tags.map((t) => h('option', { value: t.uuid, selected: t.uuid === chosen }, t.title || '(untitled)')),
    );
  }

  function renderTable(): void {
    renderPending = false;
    const all = store.order.map((u) => store.rows.get(u)).filter((r): r is WatchRow => r !== undefined);
    const rows = all.filter(matchesFilters);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    filters.page = Math.min(Math.max(1, filters.page), pages);
    const pageRows = rows.slice((filters.page - 1) * PAGE_SIZE, filters.page * PAGE_SIZE);

    rowRefs.clear();
    // Upstream shows the column only when a restock watch is among those listed.
    table.classList.toggle('has-restock', pageRows.some((r) => r.processor === 'restock_diff'));
    const fragment = document.createDocumentFragment();
    for (const row of pageRows) {
      const refs = buildRow(row);
      rowRefs.set(row.uuid, refs);
      fragment.appendChild(refs.tr);
    }
    if (pageRows.length === 0) {
      const text =
        all.length === 0 ? 'No watches yet: add a URL above to start watching it.' : 'No watches match the filter.';
      fragment.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: 9 }, text)));
    }
    tbody.replaceChildren(fragment);

    replace(
      pager,
      pages > 1
        ? h('button', { type: 'button', 'data-page': filters.page - 1, disabled: filters.page <= 1 }, '‹ Prev')
        : null,
      h(
        'span',
        { class: 'pager-info' },
        pages > 1
          ? `Page ${filters.page} of ${pages} · ${rows.length} watches`
          : `${rows.length} ${rows.length === 1 ? 'watch' : 'watches'}`,
      ),
      pages > 1
        ? h('button', { type: 'button', 'data-page': filters.page + 1, disabled: filters.page >= pages }, 'Next ›')
        : null,
    );
    updateBulkBar();
  }

  // Full re-renders (rows added / removed / moved between filters) are coalesced: a burst of
  // socket events in one task renders once.
  let renderPending = false;
  function scheduleRender(): void {
    if (renderPending) return;
    renderPending = true;
    queueMicrotask(() => {
      if (renderPending && !signal.aborted) renderTable();
    });
  }

  function onStoreEvent(e: StoreEvent): void {
    switch (e.type) {
      case 'reset':
        renderTabs();
        renderTable();
        renderCounters();
        return;
      case 'counters':
        renderCounters();
        return;
      case 'removed':
        selected.delete(e.uuid);
        scheduleRender();
        return;
      case 'row':
      case 'status':
      case 'favicon': {
        const row = store.rows.get(e.uuid);
        const refs = rowRefs.get(e.uuid);
        if (!row) return;
        if (refs && matchesFilters(row)) {
          if (e.type === 'favicon') updateFavicon(refs, row, true);
          else updateRow(refs, row);
        } else if (refs || matchesFilters(row)) {
          // New row, or a row that entered / left the current filter.
          scheduleRender();
        }
        return;
      }
    }
  }

  const unsubscribe = store.subscribe(onStoreEvent);
  const poll = window.setInterval(() => {
    if (!isConnected()) void store.refresh().catch(() => undefined);
  }, POLL_MS);
  const tick = window.setInterval(() => {
    for (const [uuid, refs] of rowRefs) {
      const row = store.rows.get(uuid);
      if (row) updateTimes(refs, row);
    }
  }, TICK_MS);

  if (store.loaded) {
    renderTabs();
    renderTable();
    renderCounters();
  } else {
    tbody.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 9 }, 'Loading…')));
  }
  // Always refetch on entry: the list may have changed while another page was shown.
  store.refresh().catch((err: unknown) => {
    if (signal.aborted) return;
    const retry = h('button', { type: 'button', onclick: () => void store.refresh().catch(() => undefined) }, 'Retry');
    if (!store.loaded) {
      tbody.replaceChildren(
        h('tr', { class: 'empty' }, h('td', { colspan: 9 }, `Could not load the watches: ${api.errorMessage(err)} `, retry)),
      );
    } else {
      toastError(`Could not refresh the list: ${api.errorMessage(err)}`);
    }
  });

  return () => {
    unsubscribe();
    window.clearInterval(tick);
    window.clearInterval(poll);
  };
};
