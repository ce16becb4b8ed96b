// The browser's screenshot of a snapshot, shown under the preview and the diff. Fetched as a
// blob (an <img> cannot send the dashboard's header) and shown through an object URL that is
// released when the next one replaces it or the page goes away.

import * as api from './api';
import { h, replace } from './dom';
import { formatDate } from './time';

export interface ScreenshotPanel {
  /** The panel: empty (hidden) until a screenshot is found. */
  el: HTMLElement;
  /** Shows the screenshot stored with snapshot `ts` (the newest that has one for `latest`). */
  show(ts: number | 'latest'): Promise<void>;
}

export function screenshotPanel(uuid: string, signal: AbortSignal): ScreenshotPanel {
  const el = h('section', { id: 'screenshot', class: 'screenshot', hidden: true });
  let url: string | null = null;
  let ctrl: AbortController | null = null;
  const release = (): void => {
    if (url) URL.revokeObjectURL(url);
    url = null;
  };
  signal.addEventListener('abort', () => {
    ctrl?.abort();
    release();
  });

  async function show(ts: number | 'latest'): Promise<void> {
    ctrl?.abort();
    const mine = new AbortController();
    ctrl = mine;
    try {
      const blob = await api.getScreenshot(uuid, ts, mine.signal);
      if (mine.signal.aborted || signal.aborted) return;
      release();
      if (!blob) {
        el.hidden = true;
        replace(el);
        return;
      }
      url = URL.createObjectURL(blob);
      const when = typeof ts === 'number' ? ` at ${formatDate(ts)}` : '';
      replace(
        el,
        h('h2', null, 'Screenshot'),
        h('p', { class: 'hint' }, `What the browser showed${when} (kept for the newest two snapshots).`),
        h('img', { id: 'screenshot-image', src: url, alt: `Screenshot of the page${when}` }),
      );
      el.hidden = false;
    } catch (err) {
      if (api.isAbort(err) || mine.signal.aborted) return;
      el.hidden = false;
      replace(el, h('p', { class: 'form-error' }, `Could not load the screenshot: ${api.errorMessage(err)}`));
    }
  }

  return { el, show };
}
