// Notification log (#/settings/notification-log): the last deliveries of change, filter-failure
// and test notifications (GET /api/v1/notifications/log, newest first), with a refresh button.

import * as api from '../api';
import { h, replace } from '../dom';
import type { View } from '../router';
import { displayName, store } from '../store';
import { formatDate, timeago } from '../time';
import type { NotificationLogEntry } from '../types';

const KIND_LABELS: Record<string, string> = {
  change: 'Change',
  filter_failure: 'Filter failure',
  test: 'Test',
};
const OUTCOMES = new Set(['sent', 'retrying', 'failed']);
/** Same loose shape check as the router: anything else is not linked. */
const UUID_RE = /^[0-9A-Za-z-]{1,64}$/;
const COLUMNS = ['Time', 'Kind', 'Watch', 'URL', 'Outcome', 'Attempt', 'Message'];

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

export const notificationLogView: View = ({ root, signal }) => {
  const refreshBtn = h('button', { type: 'button', class: 'primary', 'data-action': 'refresh-log' }, 'Refresh');
  const status = h('p', { class: 'log-status hint', role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const table = h(
    'table',
    { id: 'notification-log', class: 'log-table' },
    h('thead', null, h('tr', null, COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  const wrap = h('div', { class: 'log-wrap', hidden: true }, table);
  let entries: NotificationLogEntry[] = [];

  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Notification log'),
      h('div', { class: 'page-links' }, h('a', { href: '#/settings' }, '← Settings')),
    ),
    h('p', { class: 'hint' }, 'The last 100 notification deliveries and attempts, newest first.'),
    h('div', { class: 'log-toolbar' }, refreshBtn, status),
    errorBox,
    wrap,
  );

  function watchCell(uuid: string | null): Node | string {
    if (typeof uuid !== 'string' || !uuid) return '—';
    if (!UUID_RE.test(uuid)) return uuid;
    const row = store.rows.get(uuid);
    return h('a', { href: `#/edit/${uuid}`, class: 'log-watch', title: 'Edit this watch' }, row ? displayName(row) : uuid);
  }

  function render(): void {
    const rows = entries.map((e) => {
      const ts = typeof e?.ts === 'number' && Number.isFinite(e.ts) ? e.ts : 0;
      const kind = text(e?.kind);
      const outcome = text(e?.outcome);
      const cell = (label: string, cls: string, ...content: Array<Node | string>): HTMLTableCellElement =>
        h('td', { class: cls, 'data-label': label }, content);
      return h(
        'tr',
        { class: 'log-entry', 'data-kind': kind, 'data-outcome': outcome },
        cell(
          'Time',
          'log-time',
          ts
            ? h('time', { datetime: new Date(ts * 1000).toISOString(), title: timeago(ts) }, formatDate(ts))
            : '—',
        ),
        cell('Kind', 'log-kind', KIND_LABELS[kind] ?? kind),
        cell('Watch', 'log-watch-cell', watchCell(e?.watch_uuid ?? null)),
        cell('URL', 'log-url', h('code', null, text(e?.url))),
        cell(
          'Outcome',
          'log-outcome',
          h('span', { class: `outcome outcome-${OUTCOMES.has(outcome) ? outcome : 'other'}` }, outcome || '?'),
        ),
        cell('Attempt', 'log-attempt', typeof e?.attempt === 'number' ? String(e.attempt) : ''),
        cell('Message', 'log-message', text(e?.message)),
      );
    });
    replace(tbody, rows);
    wrap.hidden = rows.length === 0;
    status.textContent =
      rows.length === 0
        ? 'No notifications sent yet.'
        : `${rows.length} ${rows.length === 1 ? 'entry' : 'entries'}, updated ${formatDate(api.serverNow())}.`;
  }

  function load(): void {
    refreshBtn.disabled = true;
    table.setAttribute('aria-busy', 'true');
    errorBox.hidden = true;
    api
      .getNotificationLog(signal)
      .then((log) => {
        if (signal.aborted) return;
        entries = log;
        render();
      })
      .catch((err: unknown) => {
        if (signal.aborted || api.isAbort(err)) return;
        status.textContent = '';
        errorBox.textContent = `Could not load the notification log: ${api.errorMessage(err)}`;
        errorBox.hidden = false;
      })
      .finally(() => {
        refreshBtn.disabled = false;
        table.removeAttribute('aria-busy');
      });
  }

  refreshBtn.addEventListener('click', load);
  load();
  // Watch names come from the list; after a direct visit it may not be loaded yet.
  if (!store.loaded) {
    store
      .refresh()
      .then(() => {
        if (!signal.aborted && entries.length) render();
      })
      .catch(() => undefined);
  }
};
