// Notification helpers shared by the settings and edit pages: the "Send test notification"
// control, which sends the form's current (unsaved) notification settings to
// POST /api/v1/notifications/test and shows each URL's outcome inline.

import * as api from './api';
import { h, replace } from './dom';
import type { NotificationTestRequest, NotificationTestResponse } from './types';

/** The notification log page (linked from settings, the edit page and failing list rows). */
export const NOTIFICATION_LOG_HASH = '#/settings/notification-log';

/**
 * A "Send test notification" button with its result area. `collect` reads the form at click
 * time (so unsaved edits are what gets tested); it may throw an Error for input it rejects.
 * Success is announced politely (role=status), failures assertively (role=alert). Every text
 * from the server (masked URLs, error messages) is inserted as text.
 */
export function testNotificationControl(collect: () => NotificationTestRequest, signal: AbortSignal): HTMLElement {
  const button = h(
    'button',
    { type: 'button', class: 'send-test-notification', 'data-action': 'send-test-notification' },
    'Send test notification',
  );
  const status = h('div', { class: 'notify-test-status', role: 'status', 'aria-live': 'polite' });
  const alert = h('div', { class: 'notify-test-error form-error', role: 'alert', hidden: true });

  const clear = (): void => {
    replace(status);
    replace(alert);
    alert.hidden = true;
  };
  const showError = (...content: Array<Node | string>): void => {
    replace(status);
    replace(alert, ...content);
    alert.hidden = false;
  };

  button.addEventListener('click', () => {
    clear();
    let body: NotificationTestRequest;
    try {
      body = collect();
    } catch (err) {
      showError(api.errorMessage(err));
      return;
    }
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    replace(status, 'Sending test notification…');
    api
      .sendTestNotification(body)
      .then((res) => {
        if (signal.aborted) return;
        showResults(res);
      })
      .catch((err: unknown) => {
        if (signal.aborted || api.isAbort(err)) return;
        showError(`Could not send the test notification: ${api.errorMessage(err)}`);
      })
      .finally(() => {
        button.disabled = false;
        button.removeAttribute('aria-busy');
      });
  });

  function showResults(res: NotificationTestResponse): void {
    const results = Array.isArray(res?.results) ? res.results : [];
    const list = h(
      'ul',
      { class: 'notify-results' },
      results.map((r) => {
        const ok = r?.ok === true;
        const detail = ok ? 'sent' : typeof r?.error === 'string' && r.error ? r.error : 'failed';
        return h(
          'li',
          { class: ok ? 'notify-result ok' : 'notify-result failed' },
          h('code', { class: 'notify-url' }, typeof r?.url === 'string' ? r.url : '?'),
          ' ',
          h('span', { class: 'notify-outcome' }, ok ? `✓ ${detail}` : `✗ ${detail}`),
        );
      }),
    );
    const failed = results.filter((r) => r?.ok !== true).length;
    if (res?.ok === true && failed === 0) {
      const n = results.length;
      replace(
        status,
        h('p', { class: 'notify-test-summary ok' }, `Test notification sent to ${n} ${n === 1 ? 'URL' : 'URLs'}.`),
        list,
      );
    } else {
      showError(
        h(
          'p',
          { class: 'notify-test-summary' },
          `The test notification failed for ${failed} of ${results.length} ${results.length === 1 ? 'URL' : 'URLs'}.`,
        ),
        list,
      );
    }
  }

  return h(
    'div',
    { class: 'notify-test' },
    h(
      'div',
      { class: 'notify-test-actions' },
      button,
      h('a', { href: NOTIFICATION_LOG_HASH, class: 'notification-log-link' }, 'Notification log'),
    ),
    status,
    alert,
  );
}
