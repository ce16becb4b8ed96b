// Edit page (#/edit/<uuid>): the watch's settings, saved with PUT /api/v1/watch/<uuid>.
//
// Only fields whose value differs from what was loaded are sent: the server refuses unknown
// fields, and untouched fields (e.g. a list the form would re-normalise) stay exactly as stored.

import * as api from '../api';
import { conditionsEditor, readConditions } from '../conditions';
import { checkbox, externalLink, field, h, linesToList, listToLines, replace, select } from '../dom';
import { testNotificationControl } from '../notify';
import {
  DEFAULT_RESTOCK_CONFIG,
  IN_STOCK_PROCESSING,
  PROCESSORS,
  optionalNumber,
  type RestockConfig,
} from '../restock';
import { navigate, type View } from '../router';
import { browserStepsEditor, readBrowserSteps, STEP_PLACEHOLDER } from '../steps';
import { displayName, store } from '../store';
import { toast } from '../toast';
import { changedFields } from '../util';
import {
  FETCH_BACKENDS,
  INTERVAL_UNITS,
  NOTIFICATION_FORMATS,
  WEEKDAYS,
  type DaySchedule,
  type NotificationTestRequest,
  type TagBrief,
  type Watch,
} from '../types';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];

const LIST_FIELDS = [
  ['include_filters', 'Include filters', 'CSS selectors, XPath (/… or xpath:…) or JSON (json:$.path, jq:…), one per line.'],
  ['subtractive_selectors', 'Remove elements', 'CSS/XPath selectors of elements removed before the filters, one per line.'],
  ['ignore_text', 'Ignore text', 'Lines containing this text (or matching /regex/) are ignored, one per line.'],
  ['trigger_text', 'Trigger text', 'Only report a change when a line matches one of these, one per line.'],
  ['text_should_not_be_present', 'Block change while text is present', 'One per line.'],
  ['extract_text', 'Extract text', 'Keep only text matching these (plain text or /regex/), one per line.'],
] as const;

const TEXT_OPTIONS = [
  ['trim_text_whitespace', 'Trim whitespace of each line'],
  ['sort_text_alphabetically', 'Sort lines alphabetically'],
  ['remove_duplicate_lines', 'Remove duplicate lines'],
  ['check_unique_lines', 'Only report lines never seen before'],
  ['filter_text_added', 'Report added lines'],
  ['filter_text_removed', 'Report removed lines'],
  ['filter_text_replaced', 'Report replaced lines'],
] as const;

type Body = Record<string, unknown>;

/** Thrown for input the form can reject before asking the server. */
class FormError extends Error {}

function headersToText(headers: Record<string, string> | null | undefined): string {
  return Object.entries(headers ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!name) throw new FormError(`Request headers, line ${i + 1}: use the form "Name: value".`);
    out[name] = line.slice(colon + 1).trim();
  });
  return out;
}

/** Empty input -> null; otherwise a non-negative integer. */
function intOrNull(value: string, label: string): number | null {
  const v = value.trim();
  if (v === '') return null;
  if (!/^\d+$/.test(v)) throw new FormError(`${label} must be a whole number of 0 or more.`);
  return Number(v);
}

function digits(value: string, fallback: string, label: string): string {
  const v = value.trim();
  if (v === '') return fallback;
  if (!/^\d+$/.test(v)) throw new FormError(`${label} must be a whole number.`);
  return v;
}

function day(watch: Watch, name: (typeof WEEKDAYS)[number]): DaySchedule {
  const d = watch.time_schedule_limit?.[name];
  return {
    enabled: d?.enabled ?? true,
    start_time: d?.start_time || '00:00',
    duration: { hours: d?.duration?.hours ?? '24', minutes: d?.duration?.minutes ?? '00' },
  };
}

export const editView: View = ({ root, route, signal }) => {
  const uuid = route.uuid ?? '';
  root.append(h('p', { class: 'loading' }, 'Loading…'));

  Promise.all([api.getWatch(uuid, signal), api.getTags(signal), api.getSettings(signal)])
    .then(([watch, tagMap, settings]) => {
      if (signal.aborted) return;
      const tags: TagBrief[] = Object.entries(tagMap ?? {})
        .map(([id, t]) => ({ uuid: id, title: typeof t?.title === 'string' ? t.title : '' }))
        .sort((a, b) => a.title.localeCompare(b.title));
      render(watch, tags, settings.proxy_choices ?? [], (settings.extra_browsers ?? []).map((b) => b.browser_name));
    })
    .catch((err: unknown) => {
      if (signal.aborted) return;
      replace(
        root,
        h('h1', null, 'Edit watch'),
        h('p', { class: 'form-error' }, `Could not load the watch: ${api.errorMessage(err)}`),
        h('p', null, h('a', { href: '#/' }, '← Back to the list')),
      );
    });

  function render(watch: Watch, tags: TagBrief[], proxies: string[], extraBrowsers: string[]): void {
    const form = h('form', { id: 'edit-form', class: 'edit-form', novalidate: true });
    const input = (name: string, value: string | null | undefined, attrs: Record<string, string> = {}): HTMLInputElement =>
      h('input', { name, type: 'text', value: value ?? '', ...attrs });
    const textarea = (name: string, value: string, rows = 3): HTMLTextAreaElement =>
      h('textarea', { name, rows, spellcheck: 'false', value });

    // General
    const tagSelect = h('select', { name: 'tags', multiple: true, size: Math.min(Math.max(tags.length, 2), 6) });
    for (const t of tags) {
      tagSelect.appendChild(h('option', { value: t.uuid, selected: watch.tags?.includes(t.uuid) }, t.title || '(untitled)'));
    }
    const general = h(
      'fieldset',
      null,
      h('legend', null, 'General'),
      field('URL', input('url', watch.url, { inputmode: 'url', autocomplete: 'off' })),
      field('Title', input('title', watch.title, { placeholder: watch.page_title ?? '' }), 'Leave empty to use the page title.'),
      tags.length
        ? field('Tags', tagSelect, 'Ctrl/Cmd-click to choose several.')
        : h('p', { class: 'hint' }, 'No tags yet (add one with the quick-add form on the list).'),
    );

    // What to watch: the processor, and the restock processor's settings (upstream's
    // "Restock & Price Detection" tab), shown only while it is chosen.
    const processor = select('processor', [...PROCESSORS], watch.processor || 'text_json_diff');
    const restock: RestockConfig = { ...DEFAULT_RESTOCK_CONFIG, ...(watch.processor_config_restock_diff ?? {}) };
    const source = watch.processor_config_restock_diff_source ?? 'watch';
    const overridingTag = source.startsWith('tag:') ? source.slice(4) : '';
    const num = (name: keyof RestockConfig, attrs: Record<string, string | number> = {}): HTMLInputElement =>
      h('input', {
        name: `processor_config_restock_diff.${name}`,
        type: 'number',
        step: 'any',
        value: restock[name] === null ? '' : String(restock[name]),
        ...attrs,
      });
    // The API keeps the last extraction internal (as upstream's does); the list's row has it.
    const lastPrice = store.rows.get(uuid)?.restock?.price ?? '';
    const restockSettings = h(
      'div',
      { class: 'restock-settings' },
      overridingTag
        ? h(
            'p',
            { class: 'hint', id: 'restock-overridden' },
            `Set by the tag "${tags.find((t) => t.uuid === overridingTag)?.title ?? overridingTag}", which overrides the watch's own restock settings.`,
          )
        : null,
      field(
        'Re-stock detection',
        select('processor_config_restock_diff.in_stock_processing', [...IN_STOCK_PROCESSING], restock.in_stock_processing),
      ),
      checkbox('processor_config_restock_diff.follow_price_changes', 'Follow price changes', restock.follow_price_changes),
      field(
        'Below price to trigger notification',
        num('price_change_min', { placeholder: String(lastPrice) }),
        'Empty = no lower limit.',
      ),
      field(
        'Above price to trigger notification',
        num('price_change_max', { placeholder: String(lastPrice) }),
        'Empty = no upper limit.',
      ),
      field(
        'Threshold (%) for price changes since the previous check',
        num('price_change_threshold_percent', { min: 0, max: 100 }),
        'For example, 5 reports only a price that moved more than 5 %. Empty = any change.',
      ),
    );
    if (overridingTag) restockSettings.querySelectorAll('input, select').forEach((el) => el.setAttribute('disabled', ''));
    const syncProcessor = (): void => {
      restockSettings.hidden = processor.value !== 'restock_diff';
    };
    processor.addEventListener('change', syncProcessor);
    syncProcessor();
    const whatToWatch = h(
      'fieldset',
      { class: 'processor-settings' },
      h('legend', null, 'What to watch'),
      field('Type of change detection', processor),
      restockSettings,
    );

    // Check interval
    const interval = watch.time_between_check ?? {};
    const intervalInputs = h('div', { class: 'interval' });
    for (const unit of INTERVAL_UNITS) {
      const v = interval[unit];
      intervalInputs.appendChild(
        field(unit, h('input', { name: `time_between_check.${unit}`, type: 'number', min: 0, step: 1, value: v ?? '' })),
      );
    }
    const useDefault = checkbox('time_between_check_use_default', 'Use the global interval', watch.time_between_check_use_default);
    const checkInterval = h('fieldset', null, h('legend', null, 'Check interval'), useDefault, intervalInputs);
    // The watch's own interval only applies without the global one: grey it out meanwhile
    // (the values are kept and still saved).
    const syncInterval = (): void => {
      const on = useDefault.querySelector('input')?.checked ?? false;
      intervalInputs.querySelectorAll('input').forEach((i) => (i.disabled = on));
    };
    useDefault.addEventListener('change', syncInterval);
    syncInterval();

    // Schedule window
    const tsl = watch.time_schedule_limit ?? {};
    const dayRows = WEEKDAYS.map((name) => {
      const d = day(watch, name);
      const p = `time_schedule_limit.${name}`;
      return h(
        'div',
        { class: 'day-row' },
        checkbox(`${p}.enabled`, name.charAt(0).toUpperCase() + name.slice(1), d.enabled),
        field('Start', h('input', { name: `${p}.start_time`, type: 'time', value: d.start_time })),
        field('Hours', h('input', { name: `${p}.duration.hours`, type: 'number', min: 0, max: 24, value: d.duration.hours })),
        field('Minutes', h('input', { name: `${p}.duration.minutes`, type: 'number', min: 0, max: 59, value: d.duration.minutes })),
      );
    });
    const schedule = h(
      'fieldset',
      null,
      h('legend', null, 'Schedule window'),
      checkbox('time_schedule_limit.enabled', 'Only check within these times', Boolean(tsl.enabled)),
      field(
        'Time zone',
        input('time_schedule_limit.timezone', tsl.timezone ?? '', { placeholder: 'e.g. Europe/Berlin (empty = server default)' }),
      ),
      h('div', { class: 'days' }, dayRows),
    );

    // Request
    const backend = watch.fetch_backend || 'system';
    const backends: { value: string; label: string }[] = [
      ...FETCH_BACKENDS,
      ...extraBrowsers.map((name) => ({ value: `extra_browser_${name}`, label: `${name} (extra browser)` })),
    ];
    // A value this page does not offer (an extra browser set over the API) stays as it is.
    if (!backends.some((b) => b.value === backend)) backends.push({ value: backend, label: backend });
    const fetchBackend = select('fetch_backend', backends, backend);
    const request = h(
      'fieldset',
      null,
      h('legend', null, 'Request'),
      field('Fetch method', fetchBackend, 'Chrome/JavaScript runs the page\'s scripts (and the browser steps below); the plain client is faster.'),
      field('Method', select('method', METHODS.map((m) => ({ value: m, label: m })), watch.method || 'GET')),
      field('Headers', textarea('headers', headersToText(watch.headers)), 'One per line: Name: value'),
      field('Body', textarea('body', watch.body ?? '')),
      checkbox('ignore_status_codes', 'Accept any HTTP status code (not only 200)', Boolean(watch.ignore_status_codes)),
      // Only with a proxy list (settings page): the choices are its keys.
      proxies.length > 0
        ? field(
            'Proxy',
            select(
              'proxy',
              [{ value: '', label: 'Default (tag or settings)' }, ...proxies.map((k) => ({ value: k, label: k === 'no-proxy' ? 'No proxy' : k }))],
              watch.proxy ?? '',
            ),
          )
        : null,
    );

    // Browser: only used when the page is fetched with Chrome (upstream's order: the script,
    // the wait, then the steps).
    const stepsWarning = h(
      'p',
      { class: 'form-warning steps-warning', role: 'note', hidden: true },
      'Browser steps need the Chrome/JavaScript fetch method: with the Basic fast Plaintext/HTTP Client every check of this watch fails until the steps are removed or the fetch method is changed.',
    );
    const syncStepsWarning = (): void => {
      // Rows left at "Choose one" are dropped by the server: they do not count.
      const steps = readBrowserSteps(form).filter((s) => s.operation && s.operation !== STEP_PLACEHOLDER);
      stepsWarning.hidden = !(fetchBackend.value === 'html_requests' && steps.length > 0);
    };
    const browser = h(
      'fieldset',
      { class: 'browser-settings' },
      h('legend', null, 'Browser (Chrome/JavaScript)'),
      h('p', { class: 'hint' }, 'Used when the fetch method is Chrome/JavaScript, or the system default is.'),
      field(
        'Wait seconds before extracting text',
        h('input', { name: 'webdriver_delay', type: 'number', min: 0, step: 1, value: watch.webdriver_delay ?? '', placeholder: 'Settings default' }),
        'Empty = the settings\' value.',
      ),
      field(
        'Execute JavaScript before change detection',
        textarea('webdriver_js_execute_code', watch.webdriver_js_execute_code ?? ''),
        'Runs on the page once it has loaded, before the steps.',
      ),
      h('h3', { class: 'subhead' }, 'Browser steps'),
      h(
        'p',
        { class: 'hint' },
        'Run in order after the page has loaded (the check starts at the watch\'s URL, so a first "Goto site" is not needed), then the text is read. Selectors and values may use Jinja2 templates.',
      ),
      stepsWarning,
      browserStepsEditor(watch.browser_steps ?? [], {
        failedStep: watch.browser_steps_last_error_step ?? null,
        lastError: watch.last_error ?? null,
        onChange: syncStepsWarning,
      }),
    );
    fetchBackend.addEventListener('change', syncStepsWarning);

    // Filters and triggers
    const filters = h(
      'fieldset',
      null,
      h('legend', null, 'Filters and triggers'),
      LIST_FIELDS.map(([name, label, hint]) => field(label, textarea(name, listToLines(watch[name])), hint)),
      h(
        'div',
        { class: 'checks' },
        TEXT_OPTIONS.map(([name, label]) => checkbox(name, label, Boolean(watch[name]))),
      ),
    );

    // Conditions (upstream's "Conditions" tab): rules a change must meet to be reported.
    const conditions = h(
      'fieldset',
      { class: 'conditions-settings' },
      h('legend', null, 'Conditions'),
      h(
        'p',
        { class: 'hint' },
        'A change is reported (stored and notified) only when these rules hold on the text after the filters. The extracted number is the first number (price) in that text; Levenshtein compares with the last snapshot.',
      ),
      conditionsEditor(watch.conditions ?? [], watch.conditions_match_logic ?? 'ALL'),
    );

    // Notifications
    const notifications = h(
      'fieldset',
      null,
      h('legend', null, 'Notifications'),
      field('Notification URLs', textarea('notification_urls', listToLines(watch.notification_urls)), 'Apprise URLs, one per line.'),
      field('Title', input('notification_title', watch.notification_title, { placeholder: 'Empty = tag or global default' })),
      field('Body', textarea('notification_body', watch.notification_body ?? '', 4), 'Empty = tag or global default.'),
      field(
        'Format',
        select(
          'notification_format',
          NOTIFICATION_FORMATS.map((f) => ({ value: f, label: f })),
          watch.notification_format || 'System default',
        ),
      ),
      checkbox('notification_muted', 'Mute notifications', watch.notification_muted),
      // Tests the form's current (unsaved) values; what is left empty falls back to the watch's
      // stored settings, then its tags' and the global ones (the server resolves that).
      testNotificationControl(() => {
        const val = (name: string): string => {
          const el = form.elements.namedItem(name);
          return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement
            ? el.value
            : '';
        };
        const req: NotificationTestRequest = { watch_uuid: uuid, notification_format: val('notification_format') };
        const urls = linesToList(val('notification_urls'));
        if (urls.length) req.notification_urls = urls;
        if (val('notification_title').trim()) req.notification_title = val('notification_title');
        if (val('notification_body').trim()) req.notification_body = val('notification_body');
        return req;
      }, signal),
    );

    const errorBox = h('div', { class: 'form-error', id: 'edit-error', role: 'alert', hidden: true });
    const saveBtn = h('button', { type: 'submit', class: 'primary' }, 'Save');
    form.append(
      general,
      whatToWatch,
      checkInterval,
      schedule,
      request,
      browser,
      filters,
      conditions,
      notifications,
      errorBox,
      h('div', { class: 'form-actions' }, saveBtn, h('a', { href: '#/', class: 'button' }, 'Cancel')),
    );

    syncStepsWarning();

    const name = displayName(watch);
    replace(
      root,
      h(
        'div',
        { class: 'page-head' },
        h('h1', null, 'Edit: ', h('span', { class: 'page-title' }, name)),
        h(
          'div',
          { class: 'page-links' },
          externalLink(watch.url, 'Open site ↗'),
          h('a', { href: `#/history/${uuid}` }, 'History'),
          h('a', { href: `#/preview/${uuid}` }, 'Preview'),
        ),
      ),
      form,
    );

    // Values as loaded, to send only what the user changed.
    let initial: Body = {};
    try {
      initial = collect(form, watch);
    } catch {
      // A stored value the form cannot represent: every field will be sent on save.
    }

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      errorBox.hidden = true;
      let body: Body;
      try {
        body = changedFields(collect(form, watch), initial);
      } catch (err) {
        showError(api.errorMessage(err));
        return;
      }
      if (Object.keys(body).length === 0) {
        toast('No changes to save', 'info');
        return;
      }
      saveBtn.disabled = true;
      api
        .updateWatch(uuid, body)
        .then(() => {
          toast('Watch saved', 'success');
          void store.refresh().catch(() => undefined);
          if (!signal.aborted) navigate('#/');
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
  }
};

/** Reads the form into a PUT body (every editable field). */
function collect(form: HTMLFormElement, watch: Watch): Body {
  const val = (name: string): string => {
    const el = form.elements.namedItem(name);
    return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement
      ? el.value
      : '';
  };
  const checked = (name: string): boolean => {
    const el = form.elements.namedItem(name);
    return el instanceof HTMLInputElement && el.checked;
  };

  const tagSelect = form.elements.namedItem('tags');
  let tags = watch.tags ?? [];
  if (tagSelect instanceof HTMLSelectElement) {
    const offered = new Set(Array.from(tagSelect.options, (o) => o.value));
    const chosen = Array.from(tagSelect.selectedOptions, (o) => o.value);
    // Tag uuids the form does not offer (unknown tags) are kept as they are.
    tags = [...tags.filter((t) => !offered.has(t)), ...chosen];
  }

  const time_between_check: Record<string, number | null> = {};
  for (const unit of INTERVAL_UNITS) {
    time_between_check[unit] = intOrNull(val(`time_between_check.${unit}`), `Check interval ${unit}`);
  }

  const tz = val('time_schedule_limit.timezone').trim();
  const time_schedule_limit: Record<string, unknown> = {
    enabled: checked('time_schedule_limit.enabled'),
    timezone: tz || null,
  };
  for (const name of WEEKDAYS) {
    const p = `time_schedule_limit.${name}`;
    const start = val(`${p}.start_time`).slice(0, 5) || '00:00';
    time_schedule_limit[name] = {
      enabled: checked(`${p}.enabled`),
      start_time: start,
      duration: {
        hours: digits(val(`${p}.duration.hours`), '24', `${name} hours`),
        minutes: digits(val(`${p}.duration.minutes`), '00', `${name} minutes`),
      },
    } satisfies DaySchedule;
  }

  const rs = (name: keyof RestockConfig): string => val(`processor_config_restock_diff.${name}`);
  const restock: RestockConfig = {
    in_stock_processing: rs('in_stock_processing') || 'in_stock_only',
    follow_price_changes: checked('processor_config_restock_diff.follow_price_changes'),
    price_change_min: optionalNumber(rs('price_change_min'), 'Below price to trigger notification'),
    price_change_max: optionalNumber(rs('price_change_max'), 'Above price to trigger notification'),
    price_change_threshold_percent: optionalNumber(
      rs('price_change_threshold_percent'),
      'Threshold (%) for price changes since the previous check',
    ),
  };

  const body: Body = {
    url: val('url').trim(),
    processor: val('processor') || 'text_json_diff',
    processor_config_restock_diff: restock,
    title: val('title').trim() || null,
    tags,
    time_between_check_use_default: checked('time_between_check_use_default'),
    time_between_check,
    time_schedule_limit,
    method: val('method'),
    headers: parseHeaders(val('headers')),
    body: val('body') === '' ? null : val('body'),
    ignore_status_codes: checked('ignore_status_codes'),
    ...(form.elements.namedItem('proxy') ? { proxy: val('proxy') || null } : {}),
    fetch_backend: val('fetch_backend'),
    webdriver_delay: intOrNull(val('webdriver_delay'), 'Wait seconds before extracting text'),
    webdriver_js_execute_code: val('webdriver_js_execute_code').trim() === '' ? null : val('webdriver_js_execute_code'),
    browser_steps: readBrowserSteps(form),
    conditions: readConditions(form),
    conditions_match_logic: val('conditions_match_logic') || 'ALL',
    notification_urls: linesToList(val('notification_urls')),
    notification_title: val('notification_title').trim() || null,
    notification_body: val('notification_body').trim() === '' ? null : val('notification_body'),
    notification_format: val('notification_format'),
    notification_muted: checked('notification_muted'),
  };
  for (const [name] of LIST_FIELDS) body[name] = linesToList(val(name));
  for (const [name] of TEXT_OPTIONS) body[name] = checked(name);
  return body;
}
