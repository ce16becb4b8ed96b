// fetch wrapper and one function per server endpoint the dashboard uses.
//
// Every request is same-origin with the session cookie and carries `X-Changewatch-UI: 1`: the
// server's CSRF guard lets the UI call /ui/* and /api/v1/* without an API key only when that
// header is present (a cross-site form or <img> cannot set it).

import type {
  BulkOp,
  DiffFormat,
  NotificationLogEntry,
  NotificationTestRequest,
  NotificationTestResponse,
  SessionInfo,
  TagMap,
  UiSettings,
  UiSettingsUpdate,
  Watch,
  WatchListResponse,
} from './types';

/** An HTTP error with the server's message (JSON string, {"message"} or plain text). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** True for the AbortError a fetch throws when its view was left: not worth a toast. */
export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** Human text for any error thrown by this module (or anything else). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is, with its media type (a file's bytes); instead of `body`. */
  raw?: { body: BodyInit; type: string };
  query?: Record<string, string | number | boolean>;
  signal?: AbortSignal;
}

/** Called on 401/403 so the app can re-check the session (and show the login page). */
let onAuthFailure: ((status: number, path: string) => void) | null = null;
export function setAuthFailureHandler(fn: (status: number, path: string) => void): void {
  onAuthFailure = fn;
}

/**
 * Server clock minus browser clock, in seconds, estimated from the Date header of the last
 * watch list. Relative times ("5 minutes ago") are computed against the server's clock so a
 * skewed browser clock does not make fresh checks look like they happen in the future.
 */
let serverClockOffset = 0;
export function serverNow(): number {
  return Date.now() / 1000 + serverClockOffset;
}

function buildUrl(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Turns an error response into a readable message. */
async function readError(res: Response): Promise<string> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* body unreadable */
  }
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json') || /^\s*["{]/.test(text)) {
    try {
      const data: unknown = JSON.parse(text);
      if (typeof data === 'string' && data) return data;
      if (data && typeof data === 'object') {
        const obj = data as Record<string, unknown>;
        for (const key of ['message', 'error', 'status']) {
          const v = obj[key];
          if (typeof v === 'string' && v) return v;
        }
      }
    } catch {
      /* not JSON after all */
    }
  }
  // An HTML error page (e.g. a router 404) is not worth showing as text.
  if (text && !type.includes('html') && text.length <= 500) return text.trim();
  return `${res.status} ${res.statusText || 'request failed'}`.trim();
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {
    'X-Changewatch-UI': '1',
    Accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
  };
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) {
    headers['content-type'] = opts.raw.type;
    body = opts.raw.body;
  } else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(buildUrl(path, opts.query), {
    method: opts.method ?? 'GET',
    headers,
    body,
    credentials: 'same-origin',
    cache: 'no-store',
    signal: opts.signal,
  });
  if (!res.ok) {
    const message = await readError(res);
    if ((res.status === 401 || res.status === 403) && path !== '/ui/login' && path !== '/ui/session') {
      onAuthFailure?.(res.status, path);
    }
    throw new ApiError(res.status, message);
  }
  return res;
}

/** JSON response body (undefined for 204 / empty bodies). */
export async function requestJson<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await request(path, opts);
  const text = res.status === 204 ? '' : await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function requestText(path: string, opts: RequestOptions = {}): Promise<string> {
  const res = await request(path, opts);
  return res.status === 204 ? '' : res.text();
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------
// UI endpoints (/ui/*)

export const getSession = (): Promise<SessionInfo> => requestJson('/ui/session');

export const login = (password: string): Promise<{ authenticated: boolean }> =>
  requestJson('/ui/login', { method: 'POST', body: { password } });

export const logout = (): Promise<void> => requestJson('/ui/logout', { method: 'POST' });

export async function listWatches(signal?: AbortSignal): Promise<WatchListResponse> {
  const res = await request('/ui/watches', { signal });
  const date = res.headers.get('date');
  if (date) {
    const server = Date.parse(date);
    if (!Number.isNaN(server)) serverClockOffset = (server - Date.now()) / 1000;
  }
  return (await res.json()) as WatchListResponse;
}

export const markViewed = (uuid: string): Promise<void> =>
  requestJson(`/ui/watch/${enc(uuid)}/viewed`, { method: 'POST' });

export const bulkOperation = (
  op: BulkOp,
  uuids: string[],
  extraData = '',
): Promise<{ message?: string; type?: string }> =>
  requestJson('/ui/checkbox-operations', { method: 'POST', body: { op, uuids, extra_data: extraData } });

export const getSettings = (signal?: AbortSignal): Promise<UiSettings> => requestJson('/ui/settings', { signal });

export const putSettings = (update: UiSettingsUpdate): Promise<UiSettings> =>
  requestJson('/ui/settings', { method: 'PUT', body: update });

export const setPassword = (password: string): Promise<void> =>
  requestJson('/ui/settings/password', { method: 'POST', body: { password } });

export const regenerateApiKey = (): Promise<{ api_access_token: string }> =>
  requestJson('/ui/settings/api-key', { method: 'POST' });

export const regenerateRssToken = (): Promise<{ rss_access_token: string }> =>
  requestJson('/ui/settings/rss-token', { method: 'POST' });

// ---------------------------------------------------------------------------------------
// REST API v1

export const createWatch = (data: { url: string; title?: string; tags?: string[] }): Promise<{ uuid: string }> =>
  requestJson('/api/v1/watch', { method: 'POST', body: data });

export const getWatch = (uuid: string, signal?: AbortSignal): Promise<Watch> =>
  requestJson(`/api/v1/watch/${enc(uuid)}`, { signal });

export const updateWatch = (uuid: string, data: Record<string, unknown>): Promise<unknown> =>
  requestJson(`/api/v1/watch/${enc(uuid)}`, { method: 'PUT', body: data });

export const deleteWatch = (uuid: string): Promise<void> =>
  requestJson(`/api/v1/watch/${enc(uuid)}`, { method: 'DELETE' });

/** The single-watch operations of GET /api/v1/watch/<uuid> (REST fallback of the socket). */
export function watchOperation(
  uuid: string,
  op: { recheck: true } | { paused: 'paused' | 'unpaused' } | { muted: 'muted' | 'unmuted' },
): Promise<unknown> {
  const query: Record<string, string> = {};
  if ('recheck' in op) query['recheck'] = '1';
  else if ('paused' in op) query['paused'] = op.paused;
  else query['muted'] = op.muted;
  return requestJson(`/api/v1/watch/${enc(uuid)}`, { query });
}

/** Snapshot timestamps, oldest first. */
export async function getHistory(uuid: string, signal?: AbortSignal): Promise<number[]> {
  const map = await requestJson<Record<string, string>>(`/api/v1/watch/${enc(uuid)}/history`, { signal });
  return Object.keys(map ?? {})
    .map(Number)
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
}

/** Snapshot text; `ts` = epoch seconds or 'latest'. */
export const getSnapshot = (uuid: string, ts: number | 'latest', signal?: AbortSignal): Promise<string> =>
  requestText(`/api/v1/watch/${enc(uuid)}/history/${enc(String(ts))}`, { signal });

export interface DiffQuery {
  from: number | 'previous';
  to: number | 'latest';
  format: DiffFormat;
  changesOnly: boolean;
  wordDiff: boolean;
}

export const getDifference = (uuid: string, q: DiffQuery, signal?: AbortSignal): Promise<string> =>
  requestText(`/api/v1/watch/${enc(uuid)}/difference/${enc(String(q.from))}/${enc(String(q.to))}`, {
    query: { format: q.format, changesOnly: q.changesOnly, word_diff: q.wordDiff },
    signal,
  });

export const getTags = (signal?: AbortSignal): Promise<TagMap> => requestJson('/api/v1/tags', { signal });

export const createTag = (title: string): Promise<{ uuid: string }> =>
  requestJson('/api/v1/tag', { method: 'POST', body: { title } });

/** The watch's favicon as a blob (fetched with the UI header, which an <img> cannot send). */
export async function getFavicon(uuid: string): Promise<Blob> {
  const res = await request(`/api/v1/watch/${enc(uuid)}/favicon`);
  return res.blob();
}

/** The browser's screenshot of a snapshot (the newest with one for `latest`), or null when
 *  there is none (plain-HTTP watches, snapshots older than the newest two): the UI route
 *  answers 204 then, so the browser logs no error for the usual case. */
export async function getScreenshot(uuid: string, ts: number | 'latest', signal?: AbortSignal): Promise<Blob | null> {
  const res = await request(`/ui/watch/${enc(uuid)}/screenshot`, { query: { timestamp: String(ts) }, signal });
  return res.status === 204 ? null : res.blob();
}

/** "Send test notification": delivers at once and answers with each URL's outcome. */
export const sendTestNotification = (body: NotificationTestRequest): Promise<NotificationTestResponse> =>
  requestJson('/api/v1/notifications/test', { method: 'POST', body });

/** The last deliveries (newest first). */
export async function getNotificationLog(signal?: AbortSignal): Promise<NotificationLogEntry[]> {
  const data = await requestJson<{ log?: unknown }>('/api/v1/notifications/log', { signal });
  return Array.isArray(data?.log) ? (data.log as NotificationLogEntry[]) : [];
}
