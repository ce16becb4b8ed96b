// Preview page (#/preview/<uuid>): the text of the latest snapshot (or a chosen one), shown as
// plain text.

import * as api from '../api';
import { externalLink, h, replace, select } from '../dom';
import type { View } from '../router';
import { displayName, store } from '../store';
import { screenshotPanel } from '../screenshot';
import { formatDate } from '../time';

export const previewView: View = ({ root, route, signal }) => {
  const uuid = route.uuid ?? '';
  const known = store.rows.get(uuid);
  const title = h('span', { class: 'page-title' }, known ? displayName(known) : '');
  const links = h('div', { class: 'page-links' });
  const picker = h('div', { class: 'diff-controls' });
  const note = h('p', { class: 'hint' });
  const pre = h('pre', { id: 'preview-text', class: 'preview-text' }, 'Loading…');
  const shot = screenshotPanel(uuid, signal);
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'Preview: ', title), links), picker, note, pre, shot.el);

  let loadAbort: AbortController | null = null;
  signal.addEventListener('abort', () => loadAbort?.abort());

  async function show(ts: number | 'latest'): Promise<void> {
    void shot.show(ts);
    loadAbort?.abort();
    const ctrl = new AbortController();
    loadAbort = ctrl;
    pre.setAttribute('aria-busy', 'true');
    try {
      const text = await api.getSnapshot(uuid, ts, ctrl.signal);
      if (ctrl.signal.aborted) return;
      pre.textContent = text;
      note.className = 'hint';
      note.textContent = text === '' ? 'This snapshot has no text.' : '';
    } catch (err) {
      if (api.isAbort(err) || ctrl.signal.aborted) return;
      pre.textContent = '';
      note.textContent = api.errorMessage(err);
      note.className = 'form-error';
    } finally {
      if (loadAbort === ctrl) pre.removeAttribute('aria-busy');
    }
  }

  Promise.all([api.getWatch(uuid, signal), api.getHistory(uuid, signal)])
    .then(([watch, timestamps]) => {
      if (signal.aborted) return;
      title.textContent = displayName(watch);
      replace(
        links,
        externalLink(watch.url, 'Open site ↗'),
        h('a', { href: `#/history/${uuid}` }, 'History'),
        h('a', { href: `#/edit/${uuid}` }, 'Edit'),
      );
      if (timestamps.length === 0) {
        pre.textContent = '';
        note.textContent = 'No snapshot yet: the watch has not been checked successfully.';
        return;
      }
      const newest = timestamps[timestamps.length - 1] ?? 0;
      const versions = [...timestamps].reverse().map((ts) => ({
        value: String(ts),
        label: `${formatDate(ts)}${ts === newest ? ' (latest)' : ''}`,
      }));
      const sel = select('version', versions, String(newest), { 'aria-label': 'Snapshot' });
      sel.addEventListener('change', () => void show(Number(sel.value)));
      replace(picker, h('label', { class: 'field inline' }, h('span', { class: 'field-label' }, 'Snapshot'), sel));
      void show('latest');
    })
    .catch((err: unknown) => {
      if (signal.aborted) return;
      pre.textContent = '';
      note.className = 'form-error';
      note.textContent = `Could not load the watch: ${api.errorMessage(err)}`;
    });
};
