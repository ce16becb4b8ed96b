// The watch list state shared by the list page and the socket: rows, tags and counters.
//
// REST (GET /ui/watches) is the truth; socket events are hints applied in between. A refresh
// can race with socket events (an event may arrive while the list is being fetched), so every
// live change made while a refresh is in flight is recorded and replayed on top of the fetched
// list: each state change on the server emits an event, so the last replayed event per watch
// is at least as new as the fetched row.

import { listWatches } from './api';
import { learnStyle } from './time';
import type { RestockState, TagBrief, WatchListResponse, WatchRow } from './types';

export type StoreEvent =
  | { type: 'reset' }
  | { type: 'row'; uuid: string; added: boolean }
  | { type: 'removed'; uuid: string }
  | { type: 'counters' }
  | { type: 'status'; uuid: string }
  | { type: 'favicon'; uuid: string };

export interface Counters {
  queue_size: number;
  checking_now: number;
  count_errors: number;
  unread_changes_count: number;
}

type Listener = (e: StoreEvent) => void;

const STRING_KEYS = ['url', 'link', 'last_checked_text', 'last_changed_text', 'processor'] as const;
const NULLABLE_STRING_KEYS = ['title', 'page_title'] as const;
const NULLABLE_BOOL_KEYS = ['use_page_title_in_list'] as const;
const NUMBER_KEYS = ['last_checked', 'last_changed', 'history_n', 'fetch_time'] as const;
const BOOL_KEYS = [
  'checking_now',
  'queued',
  'unviewed',
  'has_error',
  'paused',
  'notification_muted',
  'has_favicon',
] as const;

/**
 * Copies the known, well-typed fields of an untrusted payload. Never Object.assign() a
 * server object: a "__proto__" key from JSON would otherwise replace the row's prototype.
 */
function pickRowFields(src: Record<string, unknown>): Partial<WatchRow> {
  const out: Partial<WatchRow> = {};
  for (const k of STRING_KEYS) {
    const v = src[k];
    if (typeof v === 'string') out[k] = v;
  }
  for (const k of NULLABLE_STRING_KEYS) {
    const v = src[k];
    if (typeof v === 'string' || v === null) out[k] = v;
  }
  for (const k of NULLABLE_BOOL_KEYS) {
    const v = src[k];
    if (typeof v === 'boolean' || v === null) out[k] = v;
  }
  for (const k of NUMBER_KEYS) {
    const v = src[k];
    if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  }
  for (const k of BOOL_KEYS) {
    const v = src[k];
    if (typeof v === 'boolean') out[k] = v;
  }
  if (Array.isArray(src['tags'])) out.tags = src['tags'].filter((t): t is string => typeof t === 'string');
  const restock = restockOf(src['restock']);
  if (restock) out.restock = restock;
  const err = src['last_error'];
  if (typeof err === 'string' || err === false) out.last_error = err === '' ? false : err;
  else if (err === null) out.last_error = false;
  const notif = src['last_notification_error'];
  if (typeof notif === 'string' || notif === false || notif === null) {
    out.notification_error = typeof notif === 'string' ? notif.trim() : '';
  } else if (typeof src['error_text'] === 'string') {
    out.notification_error = notificationErrorOf(src['error_text']);
  }
  return out;
}

/** A restock row's state, each field checked for its type (anything else reads as unknown). */
function restockOf(v: unknown): RestockState | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const n = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return {
    in_stock: typeof o['in_stock'] === 'boolean' ? o['in_stock'] : null,
    price: n(o['price']),
    currency: typeof o['currency'] === 'string' ? o['currency'] : null,
    last_price: n(o['last_price']),
  };
}

/**
 * The notification error inside the server's `error_text`, as text. Rows (REST and socket
 * alike) carry the watch's `last_notification_error` only there, as
 * `<div class="notification-error">…</div>` after the escaped check error. The HTML is parsed
 * in an inert document (DOMParser runs no scripts and loads nothing) and only the text of that
 * element is kept; page text inside it was escaped by the server, so it cannot forge one.
 */
function notificationErrorOf(errorText: string): string {
  if (!errorText.includes('notification-error')) return '';
  const doc = new DOMParser().parseFromString(`<body>${errorText}</body>`, 'text/html');
  return doc.body.querySelector('.notification-error')?.textContent?.trim() ?? '';
}

function emptyRow(uuid: string): WatchRow {
  return {
    uuid,
    url: '',
    link: '',
    title: null,
    page_title: null,
    use_page_title_in_list: null,
    tags: [],
    last_checked: 0,
    last_changed: 0,
    last_error: false,
    checking_now: false,
    queued: false,
    unviewed: false,
    has_error: false,
    notification_error: '',
    last_checked_text: 'Not yet',
    last_changed_text: 'Not yet',
    history_n: 0,
    fetch_time: 0,
    paused: false,
    notification_muted: false,
    has_favicon: false,
    processor: 'text_json_diff',
  };
}

type Named = Pick<WatchRow, 'title' | 'page_title' | 'url'> &
  Partial<Pick<WatchRow, 'link' | 'use_page_title_in_list'>>;

/**
 * Title shown for a watch, as upstream's list row decides: its own title, else the page's
 * <title> when the settings or the watch say to use it, else its link (the URL, rendered when
 * it is a template).
 */
export function displayName(row: Named, settingsUsePageTitle = store.usePageTitle): string {
  const link = row.link && row.link !== 'DISABLED' ? row.link : '';
  const pageTitle = settingsUsePageTitle || row.use_page_title_in_list === true ? row.page_title : '';
  return row.title || pageTitle || link || row.url;
}

export class WatchStore {
  /** Rows by uuid; `order` is the server's order (new rows from the socket are appended). */
  readonly rows = new Map<string, WatchRow>();
  order: string[] = [];
  tags: TagBrief[] = [];
  counters: Counters = { queue_size: 0, checking_now: 0, count_errors: 0, unread_changes_count: 0 };
  /** Live status comments ("Fetching...") while a check runs. */
  readonly statusComments = new Map<string, string>();
  /** Bumped when a watch's favicon changes, so cached images are refetched. */
  readonly faviconVersions = new Map<string, number>();
  loaded = false;
  /** The settings' `ui.use_page_title_in_list`, from the last list. */
  usePageTitle = true;
  /** The RSS token from the last list load ('' until then). */
  rssToken = '';

  private listeners = new Set<Listener>();
  private inflight: Promise<void> | null = null;
  private refreshAgain = false;
  /** Live changes recorded while a refresh is in flight (replayed on the fetched data). */
  private replay: Array<() => void> | null = null;
  private replaying = false;
  /** Deleted uuids, so a late watch_update cannot bring a deleted watch back. */
  private deleted = new Set<string>();

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: StoreEvent): void {
    if (this.replaying) return;
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        console.error('store listener failed', err);
      }
    }
  }

  /** Runs a live change now, and again after an in-flight refresh lands. */
  private live(change: () => void): void {
    change();
    this.replay?.push(change);
  }

  /**
   * Refetches GET /ui/watches. Concurrent calls share one request; a call made while a
   * request is running schedules one more afterwards (the running one may predate it).
   */
  refresh(): Promise<void> {
    if (this.inflight) {
      this.refreshAgain = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      try {
        do {
          this.refreshAgain = false;
          this.replay = [];
          const data = await listWatches();
          this.applyList(data);
        } while (this.refreshAgain);
      } finally {
        this.replay = null;
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  private applyList(data: WatchListResponse): void {
    this.rows.clear();
    this.order = [];
    for (const raw of Array.isArray(data.watches) ? data.watches : []) {
      if (!raw || typeof raw.uuid !== 'string') continue;
      const row = { ...emptyRow(raw.uuid), ...pickRowFields(raw as unknown as Record<string, unknown>) };
      this.rows.set(row.uuid, row);
      this.order.push(row.uuid);
      learnStyle(row.last_checked_text);
    }
    this.tags = (Array.isArray(data.tags) ? data.tags : [])
      .filter((t) => t && typeof t.uuid === 'string')
      .map((t) => ({ uuid: t.uuid, title: typeof t.title === 'string' ? t.title : '' }));
    this.usePageTitle = data.use_page_title_in_list !== false;
    this.rssToken = typeof data.rss_access_token === 'string' ? data.rss_access_token : '';
    this.counters = {
      queue_size: num(data.queue_size),
      checking_now: num(data.checking_now),
      count_errors: num(data.count_errors),
      unread_changes_count: num(data.unread_changes_count),
    };
    for (const uuid of Array.from(this.statusComments.keys())) {
      if (!this.rows.get(uuid)?.checking_now) this.statusComments.delete(uuid);
    }
    this.deleted.clear();
    // Events received since the request started are newer than (or as new as) the list.
    const pending = this.replay ?? [];
    this.replay = [];
    this.replaying = true;
    try {
      for (const change of pending) change();
    } finally {
      this.replaying = false;
    }
    this.loaded = true;
    this.emit({ type: 'reset' });
  }

  /** Applies a `watch_update` payload (or a local optimistic change). */
  applyUpdate(payload: Record<string, unknown>): void {
    const uuid = payload['uuid'];
    if (typeof uuid !== 'string' || !uuid) return;
    const fields = pickRowFields(payload);
    // Upstream-shaped payloads carry only the texts; "Not yet" means no change recorded.
    if (fields.last_changed === undefined && fields.last_changed_text === 'Not yet') fields.last_changed = 0;
    if (fields.last_checked_text) learnStyle(fields.last_checked_text);
    let needsRefresh = false;
    this.live(() => {
      if (this.deleted.has(uuid)) return;
      const existing = this.rows.get(uuid);
      if (fields.checking_now === false) this.statusComments.delete(uuid);
      if (existing) {
        // Socket rows leave a templated URL's link out (only the list renders it): keep the
        // rendered one, unless the URL itself changed.
        if (fields.link === undefined && fields.url !== undefined && fields.url !== existing.url) {
          existing.link = '';
        }
        Object.assign(existing, fields);
        this.emit({ type: 'row', uuid, added: false });
      } else if (typeof fields.url === 'string' && fields.url) {
        // A watch added elsewhere (API, another tab): show it right away.
        this.rows.set(uuid, { ...emptyRow(uuid), ...fields });
        this.order.push(uuid);
        this.emit({ type: 'row', uuid, added: true });
      } else {
        // Not enough data to draw the row: fetch the list.
        needsRefresh = true;
      }
    });
    if (needsRefresh) void this.refresh().catch(() => undefined);
  }

  remove(uuid: string): void {
    this.live(() => {
      this.deleted.add(uuid);
      this.statusComments.delete(uuid);
      if (!this.rows.delete(uuid)) return;
      this.order = this.order.filter((u) => u !== uuid);
      this.emit({ type: 'removed', uuid });
    });
  }

  setCounters(partial: Partial<Counters>): void {
    this.live(() => {
      for (const [k, v] of Object.entries(partial) as Array<[keyof Counters, unknown]>) {
        if (typeof v === 'number' && Number.isFinite(v)) this.counters[k] = v;
      }
      this.emit({ type: 'counters' });
    });
  }

  setStatusComment(uuid: string, status: string): void {
    this.live(() => {
      if (status) this.statusComments.set(uuid, status);
      else this.statusComments.delete(uuid);
      this.emit({ type: 'status', uuid });
    });
  }

  bumpFavicon(uuid: string): void {
    this.faviconVersions.set(uuid, (this.faviconVersions.get(uuid) ?? 0) + 1);
    const row = this.rows.get(uuid);
    if (row) row.has_favicon = true;
    this.emit({ type: 'favicon', uuid });
  }

  tagTitle(uuid: string): string | undefined {
    return this.tags.find((t) => t.uuid === uuid)?.title;
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** The one store of the app. */
export const store = new WatchStore();
