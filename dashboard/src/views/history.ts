// History / diff page (#/history/<uuid>): pick two snapshots, a format and options; the
// server renders the difference. Opening the page marks the watch as viewed.

import * as api from '../api';
import { checkbox, externalLink, h, replace, sanitizeDiffHtml, select } from '../dom';
import type { View } from '../router';
import { displayName, store } from '../store';
import { screenshotPanel } from '../screenshot';
import { feedUrl } from '../rss';
import { formatDate } from '../time';
import { toastError } from '../toast';
import { DIFF_FORMATS, type DiffFormat } from '../types';

const FORMAT_LABELS: Record<DiffFormat, string> = {
  htmlcolor: 'Coloured (HTML)',
  html: 'HTML',
  text: 'Text',
  markdown: 'Markdown',
};

/** Display options are kept while moving between watches. */
const prefs: { format: DiffFormat; changesOnly: boolean; wordDiff: boolean } = {
  format: 'htmlcolor',
  changesOnly: false,
  wordDiff: false,
};

export const historyView: View = ({ root, route, signal }) => {
  const uuid = route.uuid ?? '';
  const known = store.rows.get(uuid);
  const title = h('span', { class: 'page-title' }, known ? displayName(known) : '');
  const links = h('div', { class: 'page-links' });
  const output = h('div', { id: 'diff-output', class: 'diff-output', 'aria-live': 'polite' }, 'Loading…');
  const controls = h('form', { id: 'diff-controls', class: 'diff-controls' });
  const info = h('p', { class: 'hint' });
  const shot = screenshotPanel(uuid, signal);
  root.append(h('div', { class: 'page-head' }, h('h1', null, 'History: ', title), links), controls, info, output, shot.el);

  // This watch's feed of changes (upstream shows it on the watch's page).
  const addFeedLink = (): void => {
    const link = (token: string): void => {
      const url = feedUrl(`/rss/watch/${uuid}`, token);
      if (url && !signal.aborted) links.append(h('a', { href: url, class: 'feed-link', id: 'rss-watch-feed' }, 'RSS'));
    };
    if (store.rssToken) {
      link(store.rssToken);
      return;
    }
    api
      .getSettings(signal)
      .then((s) => link(s.rss_access_token ?? ''))
      .catch(() => undefined);
  };

  // The user is looking at the changes now.
  api
    .markViewed(uuid)
    .then(() => store.applyUpdate({ uuid, unviewed: false }))
    .catch((err: unknown) => {
      if (!signal.aborted && !(err instanceof api.ApiError && err.status === 404)) toastError(api.errorMessage(err));
    });

  Promise.all([api.getWatch(uuid, signal), api.getHistory(uuid, signal)])
    .then(([watch, timestamps]) => {
      if (signal.aborted) return;
      title.textContent = displayName(watch);
      replace(
        links,
        externalLink(watch.url, 'Open site ↗'),
        h('a', { href: `#/preview/${uuid}` }, 'Preview'),
        h('a', { href: `#/edit/${uuid}` }, 'Edit'),
      );
      addFeedLink();
      setup(timestamps);
    })
    .catch((err: unknown) => {
      if (signal.aborted) return;
      replace(output, h('p', { class: 'form-error' }, `Could not load the history: ${api.errorMessage(err)}`));
    });

  let diffAbort: AbortController | null = null;
  signal.addEventListener('abort', () => diffAbort?.abort());

  function setup(timestamps: number[]): void {
    if (timestamps.length === 0) {
      replace(output, h('p', { class: 'empty-note' }, 'No snapshots yet: the watch has not been checked successfully.'));
      return;
    }
    const newest = timestamps[timestamps.length - 1] ?? 0;
    const previous = timestamps.length > 1 ? (timestamps[timestamps.length - 2] ?? newest) : newest;
    const versions = [...timestamps].reverse().map((ts) => ({
      value: String(ts),
      label: `${formatDate(ts)}${ts === newest ? ' (latest)' : ''}`,
    }));
    const fromSel = select('from', versions, String(previous), { 'aria-label': 'From version' });
    const toSel = select('to', versions, String(newest), { 'aria-label': 'To version' });
    const formatSel = select(
      'format',
      DIFF_FORMATS.map((f) => ({ value: f, label: FORMAT_LABELS[f] })),
      prefs.format,
      { 'aria-label': 'Format' },
    );
    const changesOnly = checkbox('changesOnly', 'Changes only', prefs.changesOnly);
    const wordDiff = checkbox('word_diff', 'Word diff', prefs.wordDiff);
    replace(
      controls,
      h('label', { class: 'field inline' }, h('span', { class: 'field-label' }, 'From'), fromSel),
      h('label', { class: 'field inline' }, h('span', { class: 'field-label' }, 'To'), toSel),
      h('label', { class: 'field inline' }, h('span', { class: 'field-label' }, 'Format'), formatSel),
      changesOnly,
      wordDiff,
    );
    info.textContent =
      timestamps.length === 1
        ? 'Only one snapshot so far: the next detected change will be compared with it.'
        : `${timestamps.length} snapshots.`;

    const load = (): void => {
      const box = (name: string): boolean => {
        const el = controls.elements.namedItem(name);
        return el instanceof HTMLInputElement && el.checked;
      };
      prefs.format = (DIFF_FORMATS as readonly string[]).includes(formatSel.value)
        ? (formatSel.value as DiffFormat)
        : 'htmlcolor';
      prefs.changesOnly = box('changesOnly');
      prefs.wordDiff = box('word_diff');
      void loadDiff(Number(fromSel.value), Number(toSel.value));
    };
    controls.addEventListener('change', load);
    controls.addEventListener('submit', (ev) => ev.preventDefault());
    load();
  }

  async function loadDiff(from: number, to: number): Promise<void> {
    // The screenshot of the newer side, when the browser took one.
    void shot.show(to);
    diffAbort?.abort();
    const ctrl = new AbortController();
    diffAbort = ctrl;
    output.setAttribute('aria-busy', 'true');
    const format = prefs.format;
    try {
      const text = await api.getDifference(
        uuid,
        { from, to, format, changesOnly: prefs.changesOnly, wordDiff: prefs.wordDiff },
        ctrl.signal,
      );
      if (ctrl.signal.aborted) return;
      output.dataset['format'] = format;
      if (text.trim() === '') {
        replace(output, h('p', { class: 'empty-note' }, 'No differences between these versions.'));
      } else if (format === 'htmlcolor' || format === 'html') {
        // The one place server HTML is shown: the server escapes the page text in it, and
        // sanitizeDiffHtml() rebuilds it from a whitelist anyway.
        replace(output, h('div', { class: 'diff-html' }, sanitizeDiffHtml(text)));
      } else {
        replace(output, h('pre', { class: 'diff-text' }, text));
      }
    } catch (err) {
      if (api.isAbort(err) || ctrl.signal.aborted) return;
      replace(output, h('p', { class: 'form-error' }, api.errorMessage(err)));
    } finally {
      if (diffAbort === ctrl) output.removeAttribute('aria-busy');
    }
  }
};
