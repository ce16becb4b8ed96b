// Socket.IO client: live watch updates, counters and toasts from the server, and the row /
// bulk operations sent to it. The socket is only a hint: on every (re)connect the watch list is
// refetched over REST, and when it is down operations go over REST instead (see ops.ts).

import { io, type Socket } from 'socket.io-client';
import { displayName, store } from './store';
import { toast, toastError } from './toast';

declare global {
  interface Window {
    /** The dashboard's socket, for debugging in the console (and e2e tests). */
    cwSocket?: Socket;
  }
}

type Payload = Record<string, unknown>;

let socket: Socket | null = null;
/** Whether the app wants a connection (logged in); refused connections are retried then. */
let wanted = false;
let retryTimer: number | undefined;
/** Retry interval after the server refused the connection (the client gives up by itself). */
const REFUSED_RETRY_MS = 30_000;
const statusListeners = new Set<(connected: boolean) => void>();
let onRefused: (() => void) | null = null;

export function isConnected(): boolean {
  return socket?.connected ?? false;
}

/** Called with true/false whenever the connection state changes. */
export function onConnectionChange(fn: (connected: boolean) => void): () => void {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

/** Called when the server refuses the connection (e.g. the login session expired). */
export function setRefusedHandler(fn: () => void): void {
  onRefused = fn;
}

function notify(): void {
  const c = isConnected();
  for (const fn of statusListeners) fn(c);
}

function asObject(v: unknown): Payload | null {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Payload) : null;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function create(): Socket {
  const s = io({
    path: '/socket.io',
    transports: ['websocket', 'polling'],
    // If the websocket transport cannot be opened at all (a proxy that drops upgrades),
    // fall back to long-polling instead of retrying websocket forever.
    tryAllTransports: true,
    reconnectionDelay: 3000,
    withCredentials: true,
    autoConnect: false,
  });

  s.on('connect', () => {
    notify();
    // Whatever happened while disconnected is unknown: REST is the truth.
    void store.refresh().catch(() => undefined);
  });
  s.on('disconnect', (reason) => {
    notify();
    // The server ends the sockets of a login that ended (logout, a new password, an expired
    // session). Connect again: the browser may hold a newer session (the one a password change
    // sets), and a refusal sends the app to its login check (connect_error above).
    if (reason === 'io server disconnect' && wanted) {
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(() => {
        if (wanted && !s.connected) s.connect();
      }, 1000);
    }
  });
  s.on('connect_error', () => {
    notify();
    // A refusal by the server (not a network error) stops the client's own retries; the
    // usual cause is a missing login, which the app checks.
    if (!s.active) {
      onRefused?.();
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(() => {
        if (wanted && !s.connected) s.connect();
      }, REFUSED_RETRY_MS);
    }
  });

  s.on('watch_update', (data: unknown) => {
    const watch = asObject(asObject(data)?.['watch']);
    if (watch) store.applyUpdate(watch);
  });
  s.on('watch_deleted', (data: unknown) => {
    const uuid = str(asObject(data)?.['uuid']);
    if (uuid) store.remove(uuid);
  });
  s.on('queue_size', (data: unknown) => {
    const q = asObject(data)?.['q_length'];
    if (typeof q === 'number') store.setCounters({ queue_size: q });
  });
  s.on('checking_now', (data: unknown) => {
    const n = asObject(data)?.['count'];
    if (typeof n === 'number') store.setCounters({ checking_now: n });
  });
  s.on('general_stats_update', (data: unknown) => {
    const d = asObject(data);
    if (!d) return;
    const update: Record<string, number> = {};
    if (typeof d['count_errors'] === 'number') update['count_errors'] = d['count_errors'];
    if (typeof d['unread_changes_count'] === 'number') update['unread_changes_count'] = d['unread_changes_count'];
    store.setCounters(update);
  });
  s.on('watch_small_status_comment', (data: unknown) => {
    const d = asObject(data);
    const uuid = str(d?.['uuid']);
    if (uuid) store.setStatusComment(uuid, str(d?.['status']));
  });
  s.on('watch_bumped_favicon', (data: unknown) => {
    const uuid = str(asObject(data)?.['uuid']);
    if (uuid) store.bumpFavicon(uuid);
  });
  s.on('toast', (data: unknown) => {
    const d = asObject(data);
    const message = str(d?.['message']);
    if (message) toast(message, str(d?.['type']) || 'info');
    // Toasts answer bulk operations: their effect (deleted / paused / tagged watches) is
    // fetched rather than pieced together from per-watch events.
    void store.refresh().catch(() => undefined);
  });
  // A notification was queued for a watch (upstream's client only logs it too): its delivery
  // shows up in the notification log, a failure on the watch's row.
  s.on('notification_event', (data: unknown) => {
    const uuid = str(asObject(data)?.['watch_uuid']);
    const row = uuid ? store.rows.get(uuid) : undefined;
    console.debug(`changewatch: notification queued for ${row ? displayName(row) : uuid || 'a watch'}`);
  });
  s.on('operation_result', (data: unknown) => {
    const d = asObject(data);
    if (d && d['success'] === false) toastError(str(d['error']) || 'Operation failed');
  });

  window.cwSocket = s;
  return s;
}

export function connectSocket(): void {
  wanted = true;
  socket ??= create();
  if (!socket.connected) socket.connect();
}

export function disconnectSocket(): void {
  wanted = false;
  window.clearTimeout(retryTimer);
  socket?.disconnect();
  notify();
}

/** Emits a row operation; false when the socket is down (use REST instead). */
export function emitWatchOperation(op: 'pause' | 'mute' | 'recheck', uuid: string): boolean {
  if (!socket?.connected) return false;
  socket.emit('watch_operation', { op, uuid });
  return true;
}

/** Emits a bulk operation; false when the socket is down (use REST instead). */
export function emitCheckboxOperation(op: string, uuids: string[], extraData: string): boolean {
  if (!socket?.connected) return false;
  socket.emit('checkbox-operation', { op, uuids, extra_data: extraData });
  return true;
}

// Close the connection cleanly when the tab goes away (the server then frees the sid at once).
window.addEventListener('beforeunload', () => socket?.disconnect());
