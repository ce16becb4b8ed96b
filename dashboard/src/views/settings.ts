// Settings page (#/settings): global check interval, filters and notifications
// (PUT /ui/settings, with a test of the unsaved notification settings), the API key and the UI
// password. The notification log is its sub-page (views/notifications.ts).

import * as api from '../api';
import { downloadBackup } from '../backup';
import { feedUrl } from '../rss';
import { checkbox, field, h, linesToList, listToLines, replace, select } from '../dom';
import { NOTIFICATION_LOG_HASH, testNotificationControl } from '../notify';
import type { View } from '../router';
import { checkSession } from '../session';
import { toast, toastError } from '../toast';
import { changedFields } from '../util';
import { INTERVAL_UNITS, type UiSettings, type UiSettingsUpdate } from '../types';

/** Upstream's RSS formats (the notification formats without markdown). */
const RSS_FORMATS = ['text', 'html', 'htmlcolor'];
/** Upstream's `RSS_TEMPLATE_TYPE_OPTIONS`. */
const RSS_TEMPLATE_TYPES = [
  { value: 'system_default', label: 'System default' },
  { value: 'notification_body', label: 'Notification body' },
] as const;
/** Upstream's built-in item body (html formats), shown as the override's placeholder. */
const RSS_TEMPLATE_DEFAULT = '<html><body>\n<h4><a href="{{watch_open_url}}">{{watch_label}}</a></h4>\n<p>{{diff}}</p>\n</body></html>';

/** Global formats (the global setting cannot be "System default": it is the default). */
const GLOBAL_FORMATS = ['text', 'html', 'htmlcolor', 'markdown'];

export const settingsView: View = ({ root, signal }) => {
  root.append(h('h1', null, 'Settings'), h('p', { class: 'loading' }, 'Loading…'));

  api
    .getSettings(signal)
    .then((s) => {
      if (!signal.aborted) render(s);
    })
    .catch((err: unknown) => {
      if (signal.aborted) return;
      replace(root, h('h1', null, 'Settings'), h('p', { class: 'form-error' }, `Could not load the settings: ${api.errorMessage(err)}`));
    });

  function render(initialSettings: UiSettings): void {
    let current = initialSettings;

    // --- general settings form ---------------------------------------------------------
    const form = h('form', { id: 'settings-form', class: 'settings-form', novalidate: true });
    const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
    const saveBtn = h('button', { type: 'submit', class: 'primary' }, 'Save settings');

    const fill = (s: UiSettings): void => {
      const intervalInputs = INTERVAL_UNITS.map((unit) =>
        field(unit, h('input', { name: `time_between_check.${unit}`, type: 'number', min: 0, step: 1, value: s.time_between_check?.[unit] ?? '' })),
      );
      replace(
        form,
        h(
          'fieldset',
          null,
          h('legend', null, 'Default check interval'),
          h('div', { class: 'interval' }, intervalInputs),
          field(
            'Jitter (seconds)',
            h('input', { name: 'jitter_seconds', type: 'number', min: 0, step: 1, value: s.jitter_seconds ?? 0 }),
            'Each check is moved by a random amount of up to this many seconds, so checks do not all start together.',
          ),
        ),
        h(
          'fieldset',
          null,
          h('legend', null, 'Proxies'),
          field(
            'Proxy list',
            h('textarea', {
              name: 'extra_proxies',
              rows: 3,
              spellcheck: 'false',
              placeholder: 'office = socks5://user:password@10.0.0.2:1080',
              value: (s.extra_proxies ?? []).map((p) => `${p.proxy_name} = ${p.proxy_url}`).join('\n'),
            }),
            'One per line: name = URL (http, https, socks5 or socks5h; credentials as user:password@). Watches choose one by its key; without a choice they use the default.',
          ),
          field(
            'Extra browsers',
            h('textarea', {
              name: 'extra_browsers',
              rows: 2,
              spellcheck: 'false',
              placeholder: 'remote = ws://browserless:3000/chromium?token=…',
              value: (s.extra_browsers ?? []).map((b) => `${b.browser_name} = ${b.browser_connection_url}`).join('\n'),
            }),
            'One per line: name = a Chrome DevTools WebSocket URL (ws:// or wss://). Watches can then fetch with it as their fetch method.',
          ),
          field(
            'Default proxy',
            select(
              'proxy',
              [{ value: '', label: 'The first in the list' }, ...(s.proxy_choices ?? []).map((k) => ({ value: k, label: k }))],
              s.proxy ?? '',
            ),
          ),
        ),
        h(
          'fieldset',
          null,
          h('legend', null, 'Global filters'),
          field(
            'Ignore text',
            h('textarea', { name: 'global_ignore_text', rows: 3, spellcheck: 'false', value: listToLines(s.global_ignore_text) }),
            'Applied to every watch, one per line (plain text or /regex/).',
          ),
          field(
            'Remove elements',
            h('textarea', {
              name: 'global_subtractive_selectors',
              rows: 3,
              spellcheck: 'false',
              value: listToLines(s.global_subtractive_selectors),
            }),
            'CSS/XPath selectors removed from every page, one per line.',
          ),
        ),
        h(
          'fieldset',
          null,
          h('legend', null, 'Notifications'),
          field(
            'Notification URLs',
            h('textarea', { name: 'notification_urls', rows: 3, spellcheck: 'false', value: listToLines(s.notification_urls) }),
            'Apprise URLs, one per line.',
          ),
          field('Title', h('input', { name: 'notification_title', type: 'text', value: s.notification_title ?? '' })),
          field('Body', h('textarea', { name: 'notification_body', rows: 5, value: s.notification_body ?? '' })),
          field(
            'Format',
            select(
              'notification_format',
              GLOBAL_FORMATS.map((f) => ({ value: f, label: f })),
              s.notification_format,
            ),
          ),
          // Tests what is typed now, saved or not (upstream: only the text box's URLs).
          testNotificationControl(() => {
            const n = collectNotification();
            return {
              notification_urls: n.urls,
              notification_title: n.title,
              notification_body: n.body,
              notification_format: n.format,
            };
          }, signal),
        ),
        h(
          'fieldset',
          { id: 'rss-feed-settings' },
          h('legend', null, 'RSS feeds'),
          field(
            'Content format',
            select(
              'rss_content_format',
              RSS_FORMATS.map((f) => ({ value: f, label: f })),
              s.rss_content_format ?? 'text',
            ),
            'How an item shows its change.',
          ),
          field(
            'Item body built from',
            select('rss_template_type', [...RSS_TEMPLATE_TYPES], s.rss_template_type ?? 'system_default'),
          ),
          field(
            '"System default" template override',
            h('textarea', {
              name: 'rss_template_override',
              rows: 4,
              spellcheck: 'false',
              placeholder: RSS_TEMPLATE_DEFAULT,
              value: s.rss_template_override ?? '',
            }),
            'Jinja2, with the notification tokens and {{watch_label}}. Empty = the built-in body.',
          ),
          field(
            'Number of changes to show in a watch\'s feed',
            h('input', { name: 'rss_diff_length', type: 'number', min: 0, max: 1000, step: 1, value: s.rss_diff_length ?? 5 }),
            '0 = every change.',
          ),
          checkbox('rss_hide_muted_watches', 'Hide muted watches from the feeds', s.rss_hide_muted_watches ?? true),
        ),
        h(
          'fieldset',
          null,
          h('legend', null, 'API'),
          checkbox('api_access_token_enabled', 'Require the API key (x-api-key header) for /api/v1', s.api_access_token_enabled),
        ),
        errorBox,
        h('div', { class: 'form-actions' }, saveBtn),
      );
    };

    const val = (name: string): string => {
      const el = form.elements.namedItem(name);
      return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement
        ? el.value
        : '';
    };
    const collectNotification = (): { urls: string[]; title: string; body: string; format: string } => ({
      urls: linesToList(val('notification_urls')),
      title: val('notification_title'),
      body: val('notification_body'),
      format: val('notification_format'),
    });
    fill(current);

    const collect = (): UiSettingsUpdate => {
      const num = (name: string, label: string): number | null => {
        const v = val(name).trim();
        if (v === '') return null;
        if (!/^\d+$/.test(v)) throw new Error(`${label} must be a whole number of 0 or more.`);
        return Number(v);
      };
      const interval = { weeks: null, days: null, hours: null, minutes: null, seconds: null } as UiSettings['time_between_check'];
      for (const unit of INTERVAL_UNITS) interval[unit] = num(`time_between_check.${unit}`, `Interval ${unit}`);
      const enabled = form.elements.namedItem('api_access_token_enabled');
      const hideMuted = form.elements.namedItem('rss_hide_muted_watches');
      const n = collectNotification();
      const proxies = linesToList(val('extra_proxies')).map((line) => {
        const at = line.indexOf('=');
        if (at < 1) throw new Error(`Proxy list: "${line}" is not "name = URL".`);
        return { proxy_name: line.slice(0, at).trim(), proxy_url: line.slice(at + 1).trim() };
      });
      const browsers = linesToList(val('extra_browsers')).map((line) => {
        const at = line.indexOf('=');
        if (at < 1) throw new Error(`Extra browsers: "${line}" is not "name = ws://…".`);
        return { browser_name: line.slice(0, at).trim(), browser_connection_url: line.slice(at + 1).trim() };
      });
      return {
        extra_proxies: proxies,
        extra_browsers: browsers,
        proxy: val('proxy') || null,
        time_between_check: interval,
        jitter_seconds: num('jitter_seconds', 'Jitter') ?? 0,
        global_ignore_text: linesToList(val('global_ignore_text')),
        global_subtractive_selectors: linesToList(val('global_subtractive_selectors')),
        notification_urls: n.urls,
        notification_title: n.title,
        notification_body: n.body,
        notification_format: n.format,
        api_access_token_enabled: enabled instanceof HTMLInputElement && enabled.checked,
        rss_content_format: val('rss_content_format'),
        rss_template_type: val('rss_template_type'),
        rss_template_override: val('rss_template_override').trim() === '' ? null : val('rss_template_override'),
        rss_diff_length: num('rss_diff_length', 'Number of changes to show in a watch\'s feed') ?? 0,
        rss_hide_muted_watches: hideMuted instanceof HTMLInputElement && hideMuted.checked,
      };
    };

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      errorBox.hidden = true;
      let update: UiSettingsUpdate;
      try {
        update = collect();
      } catch (err) {
        showError(api.errorMessage(err));
        return;
      }
      // Send only what changed, compared with the settings as last loaded.
      const changed = changedFields(update, current as unknown as Record<string, unknown>);
      if (Object.keys(changed).length === 0) {
        toast('No changes to save', 'info');
        return;
      }
      saveBtn.disabled = true;
      api
        .putSettings(changed as UiSettingsUpdate)
        .then((saved) => {
          if (signal.aborted) return;
          toast('Settings saved', 'success');
          if (saved && typeof saved === 'object') {
            current = saved;
            fill(saved);
            keyText.textContent = saved.api_access_token ?? keyText.textContent;
            renderPasswordState(saved.password_set);
          }
        })
        .catch((err: unknown) => {
          if (!signal.aborted) showError(api.errorMessage(err));
        })
        .finally(() => {
          saveBtn.disabled = false;
        });
    });

    function showError(message: string): void {
      errorBox.textContent = message;
      errorBox.hidden = false;
      errorBox.scrollIntoView({ block: 'center', behavior: 'smooth' });
    }

    // --- API key -------------------------------------------------------------------------
    const keyText = h('code', { id: 'api-key', class: 'api-key' }, current.api_access_token ?? '');
    const regen = h('button', { type: 'button', id: 'regenerate-api-key' }, 'Regenerate key');
    if (current.api_key_fixed) {
      regen.disabled = true;
      regen.title = 'The key is set by the API_ACCESS_TOKEN environment variable';
    }
    regen.addEventListener('click', () => {
      if (!window.confirm('Regenerate the API key? Clients using the current key will stop working.')) return;
      regen.disabled = true;
      api
        .regenerateApiKey()
        .then((res) => {
          keyText.textContent = res.api_access_token;
          current = { ...current, api_access_token: res.api_access_token };
          toast('New API key generated', 'success');
        })
        .catch((err: unknown) => toastError(api.errorMessage(err)))
        .finally(() => {
          regen.disabled = Boolean(current.api_key_fixed);
        });
    });
    const copy = h('button', { type: 'button', class: 'link' }, 'Copy');
    copy.addEventListener('click', () => {
      const text = keyText.textContent ?? '';
      if (!navigator.clipboard) {
        toastError('Clipboard not available: select the key and copy it.');
        return;
      }
      navigator.clipboard.writeText(text).then(
        () => toast('API key copied', 'success'),
        () => toastError('Could not copy: select the key and copy it.'),
      );
    });
    const apiSection = h(
      'section',
      { class: 'card' },
      h('h2', null, 'API key'),
      h('p', { class: 'hint' }, 'Send it as the x-api-key header to /api/v1.'),
      h('div', { class: 'api-key-row' }, keyText, copy, regen),
    );

    // --- backup ------------------------------------------------------------------------------
    const backupBtn = h('button', { type: 'button', id: 'download-backup' }, 'Download backup');
    backupBtn.addEventListener('click', () => {
      backupBtn.disabled = true;
      downloadBackup()
        .then((name) => toast(`Backup saved as ${name}`, 'success'))
        .catch((err: unknown) => toastError(api.errorMessage(err)))
        .finally(() => {
          backupBtn.disabled = false;
        });
    });
    const backupSection = h(
      'section',
      { class: 'card', id: 'backup-settings' },
      h('h2', null, 'Backup'),
      h(
        'p',
        { class: 'hint' },
        'Watches, their history, tags and these settings, the API key and password hash among them: keep the file private. Restore it with changewatch restore FILE, or POST it to /api/v1/backup.',
      ),
      backupBtn,
    );

    // --- RSS --------------------------------------------------------------------------------
    const rssTokenText = h('code', { id: 'rss-token', class: 'api-key' }, current.rss_access_token ?? '');
    const rssFeedLink = h('a', { class: 'feed-link', id: 'rss-main-feed' }, 'Feed of all unviewed changes');
    const showRssFeed = (token: string): void => {
      rssTokenText.textContent = token;
      const url = feedUrl('/rss', token);
      rssFeedLink.hidden = !url;
      rssFeedLink.setAttribute('href', url);
    };
    showRssFeed(current.rss_access_token ?? '');
    const rssRegen = h('button', { type: 'button', id: 'regenerate-rss-token' }, 'Regenerate token');
    rssRegen.addEventListener('click', () => {
      if (!window.confirm('Regenerate the RSS token? Feed readers using the current feed links will stop getting updates.')) return;
      rssRegen.disabled = true;
      api
        .regenerateRssToken()
        .then((res) => {
          current = { ...current, rss_access_token: res.rss_access_token };
          showRssFeed(res.rss_access_token);
          toast('New RSS token generated', 'success');
        })
        .catch((err: unknown) => toastError(api.errorMessage(err)))
        .finally(() => {
          rssRegen.disabled = false;
        });
    });
    const rssSection = h(
      'section',
      { class: 'card', id: 'rss-settings' },
      h('h2', null, 'RSS'),
      h(
        'p',
        { class: 'hint' },
        'Feed readers open the feeds with this token (?token=): all unviewed changes, a tag\'s (link on the list page) or a watch\'s (link on its history page).',
      ),
      h('div', { class: 'api-key-row' }, rssTokenText, rssRegen),
      h('p', null, rssFeedLink),
      h('p', { class: 'hint' }, 'The feeds\' format and contents are set in the form above (RSS feeds).'),
    );

    // --- password ------------------------------------------------------------------------
    const pwState = h('p', { class: 'hint' });
    const pwInput = h('input', {
      name: 'password',
      type: 'password',
      autocomplete: 'new-password',
      'aria-label': 'New password',
      placeholder: 'New password',
    });
    const removeBtn = h('button', { type: 'button', class: 'danger' }, 'Remove password');
    const pwForm = h(
      'form',
      { id: 'password-form', class: 'password-form' },
      pwInput,
      h('button', { type: 'submit', class: 'primary' }, 'Set password'),
      removeBtn,
    );
    const renderPasswordState = (set: boolean): void => {
      pwState.textContent = current.password_fixed
        ? 'The password is set by the deployment (SALTED_PASS).'
        : set
          ? 'A password protects this dashboard.'
          : 'No password: anyone who can reach this server can use the dashboard.';
      // A network-facing server refuses to drop its password; do not offer it.
      removeBtn.hidden = !set || Boolean(current.password_required) || Boolean(current.password_fixed);
    };
    renderPasswordState(current.password_set);

    const savePassword = (password: string): void => {
      api
        .setPassword(password)
        .then(async () => {
          pwInput.value = '';
          toast(password ? 'Password set' : 'Password removed', 'success');
          current = { ...current, password_set: password !== '' };
          renderPasswordState(current.password_set);
          // Whether a login is required has changed.
          await checkSession().catch(() => undefined);
        })
        .catch((err: unknown) => toastError(api.errorMessage(err)));
    };
    pwForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!pwInput.value) {
        toastError('Enter a password (or use "Remove password").');
        return;
      }
      savePassword(pwInput.value);
    });
    removeBtn.addEventListener('click', () => {
      if (window.confirm('Remove the password? The dashboard will be open to anyone who can reach it.')) savePassword('');
    });
    const pwSection = h('section', { class: 'card' }, h('h2', null, 'Password'), pwState, pwForm);

    replace(
      root,
      h(
        'div',
        { class: 'page-head' },
        h('h1', null, 'Settings'),
        h(
          'div',
          { class: 'page-links' },
          h('a', { href: NOTIFICATION_LOG_HASH }, 'Notification log'),
          h('a', { href: '#/settings/import-datastore', id: 'import-datastore-link' }, 'Import from changedetection.io'),
        ),
      ),
      form,
      apiSection,
      rssSection,
      backupSection,
      pwSection,
    );
  }
};
