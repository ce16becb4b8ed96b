// Shapes of the JSON the changewatch server sends and accepts. Only the fields the dashboard
// uses are typed; everything coming from the server is treated as untrusted data.

import type { RestockConfig } from './restock';

/** GET /ui/session */
export interface SessionInfo {
  password_required: boolean;
  authenticated: boolean;
}

/** One row of GET /ui/watches (also the merge target of socket `watch_update` payloads). */
export interface WatchRow {
  uuid: string;
  url: string;
  link: string;
  title: string | null;
  page_title: string | null;
  /** The watch's choice (null: the settings'); see `displayName`. */
  use_page_title_in_list: boolean | null;
  tags: string[];
  last_checked: number;
  last_changed: number;
  last_error: string | false;
  checking_now: boolean;
  queued: boolean;
  unviewed: boolean;
  has_error: boolean;
  /** HTML-escaped by the server: never displayed (last_error is shown as text instead). */
  error_text?: string;
  /**
   * The watch's last notification failure ("Notification error detected, goto notification
   * log."), '' when none. Derived by the store from the row (see store.ts), always plain text.
   */
  notification_error: string;
  last_checked_text: string;
  last_changed_text: string;
  history_n: number;
  fetch_time: number;
  paused: boolean;
  notification_muted: boolean;
  has_favicon: boolean;
  /** `text_json_diff` or `restock_diff`. */
  processor: string;
  /** A restock_diff row's last extraction; absent on other rows. */
  restock?: RestockState;
}

/** What the restock processor last found on a product page (upstream's internal `restock`). */
export interface RestockState {
  /** null: not found yet (upstream's "No information"). */
  in_stock: boolean | null;
  price: number | null;
  currency: string | null;
  /** The price at the check before, for the list's up/down percentage. */
  last_price: number | null;
}

export interface TagBrief {
  uuid: string;
  title: string;
}

/** GET /ui/watches */
export interface WatchListResponse {
  watches: WatchRow[];
  tags: TagBrief[];
  queue_size: number;
  checking_now: number;
  count_errors: number;
  unread_changes_count: number;
  /** The settings' `ui.use_page_title_in_list`. */
  use_page_title_in_list: boolean;
  /** The settings' `rss_access_token`, for the feed links. */
  rss_access_token?: string;
}

export interface TimeBetweenCheck {
  weeks: number | null;
  days: number | null;
  hours: number | null;
  minutes: number | null;
  seconds: number | null;
}

export const INTERVAL_UNITS = ['weeks', 'days', 'hours', 'minutes', 'seconds'] as const;
export type IntervalUnit = (typeof INTERVAL_UNITS)[number];

export interface DaySchedule {
  enabled: boolean;
  /** "HH:MM" */
  start_time: string;
  /** Strings of digits (the model stores them as the form sends them). */
  duration: { hours: string; minutes: string };
}

export const WEEKDAYS = [
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export type TimeScheduleLimit = { enabled: boolean; timezone?: string | null } & {
  [day in Weekday]: DaySchedule;
};

/** One browser step; the API wants all three keys (null where the operation takes none). */
/** One conditions rule (upstream's `{field, operator, value}`). */
export interface Condition {
  field: string;
  operator: string;
  value: string;
}

export interface BrowserStep {
  operation: string | null;
  selector: string | null;
  optional_value: string | null;
}

/** A watch's fetch methods, upstream's values and labels (`system`: the settings' one). */
export const FETCH_BACKENDS = [
  { value: 'system', label: 'System settings default' },
  { value: 'html_requests', label: 'Basic fast Plaintext/HTTP Client' },
  { value: 'html_webdriver', label: 'Chrome/JavaScript' },
] as const;

/** GET /api/v1/watch/<uuid> (the fields the edit page reads). */
export interface Watch {
  uuid: string;
  url: string;
  title: string | null;
  page_title: string | null;
  tags: string[];
  paused: boolean;
  notification_muted: boolean;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  ignore_status_codes: boolean | null;
  /** A key of the settings' proxy list (`no-proxy`: direct); null = tag or settings default. */
  proxy?: string | null;
  /** `system` (the settings' method), `html_requests`, `html_webdriver` or `extra_browser_…`. */
  fetch_backend: string;
  /** Seconds the browser waits before reading the page; null = the settings' value. */
  webdriver_delay: number | null;
  /** JavaScript the browser runs on the page before the steps; null = none. */
  webdriver_js_execute_code: string | null;
  browser_steps: BrowserStep[];
  /** `text_json_diff` (text, HTML, JSON, PDF) or `restock_diff` (stock and price). */
  processor?: string;
  /** The restock rules a check reads: the watch's own, or an overriding tag's (see `_source`);
   * `{}` when neither set any (upstream's defaults apply). */
  processor_config_restock_diff?: Partial<RestockConfig>;
  /** `watch`, or `tag:<uuid>` when a tag with `overrides_watch` sets the rules. */
  processor_config_restock_diff_source?: string;
  /** Rules a change must meet to be reported; empty = every change. */
  conditions?: Condition[];
  /** `ALL` or `ANY` of the conditions. */
  conditions_match_logic?: string;
  /** Read-only: 1-based position of the step the last check failed at, null when none. */
  browser_steps_last_error_step?: number | null;
  time_between_check: Partial<TimeBetweenCheck> | null;
  time_between_check_use_default: boolean;
  time_schedule_limit: Partial<TimeScheduleLimit> | null;
  include_filters: string[];
  subtractive_selectors: string[];
  ignore_text: string[];
  trigger_text: string[];
  text_should_not_be_present: string[];
  extract_text: string[];
  sort_text_alphabetically: boolean;
  remove_duplicate_lines: boolean;
  trim_text_whitespace: boolean;
  check_unique_lines: boolean;
  filter_text_added: boolean;
  filter_text_removed: boolean;
  filter_text_replaced: boolean;
  notification_urls: string[];
  notification_title: string | null;
  notification_body: string | null;
  notification_format: string;
  history_n?: number;
  last_checked?: number;
  last_error?: string | false;
}

/** GET /api/v1/tags */
export type TagMap = Record<string, { title: string; uuid?: string }>;

/** GET /ui/settings */
export interface UiSettings {
  time_between_check: TimeBetweenCheck;
  jitter_seconds: number;
  global_ignore_text: string[];
  global_subtractive_selectors: string[];
  notification_urls: string[];
  notification_title: string;
  notification_body: string;
  notification_format: string;
  api_access_token: string;
  api_access_token_enabled: boolean;
  /** `?token=` of the RSS feeds (read-only here). */
  rss_access_token?: string;
  /** text | html | htmlcolor: how a feed item shows its change. */
  rss_content_format?: string;
  /** Changes in a watch's feed (0: all). */
  rss_diff_length?: number;
  rss_hide_muted_watches?: boolean;
  /** system_default | notification_body: what a feed item's body is built from. */
  rss_template_type?: string;
  /** Replaces the built-in item body (system_default only); null = upstream's. */
  rss_template_override?: string | null;
  /** Proxies the checks may go through (upstream's `requests.extra_proxies`). */
  extra_proxies: { proxy_name: string; proxy_url: string }[];
  /** Remote Chromes watches may fetch with, as `extra_browser_<name>` (upstream's `requests.extra_browsers`). */
  extra_browsers: { browser_name: string; browser_connection_url: string }[];
  /** Key of the default proxy; null = the list's first. */
  proxy: string | null;
  /** Keys a watch or the default may name (read-only: derived from the list). */
  proxy_choices?: string[];
  password_set: boolean;
  /** The password comes from the deployment (SALTED_PASS) and cannot be changed here. */
  password_fixed?: boolean;
  /** The server is reachable from the network: a password cannot be removed. */
  password_required?: boolean;
  /** The key comes from the deployment (API_ACCESS_TOKEN) and cannot be regenerated. */
  api_key_fixed?: boolean;
}

/** The writable part of the settings (PUT /ui/settings takes any subset). */
export type UiSettingsUpdate = Partial<
  Omit<UiSettings, 'api_access_token' | 'rss_access_token' | 'password_set' | 'password_fixed' | 'password_required' | 'api_key_fixed' | 'proxy_choices'>
>;

/** Bulk operations of the bulk bar (socket `checkbox-operation` / POST /ui/checkbox-operations). */
export const BULK_OPS = [
  { op: 'recheck', label: 'Recheck' },
  { op: 'pause', label: 'Pause' },
  { op: 'unpause', label: 'Unpause' },
  { op: 'mute', label: 'Mute notifications' },
  { op: 'unmute', label: 'Unmute notifications' },
  { op: 'mark-viewed', label: 'Mark viewed' },
  { op: 'mark-unviewed', label: 'Mark unviewed' },
  { op: 'clear-errors', label: 'Clear errors' },
  { op: 'clear-history', label: 'Clear history' },
  { op: 'notification-default', label: 'Use default notifications' },
  { op: 'assign-tag', label: 'Assign tag…' },
  { op: 'delete', label: 'Delete' },
] as const;
export type BulkOp = (typeof BULK_OPS)[number]['op'];

/** Diff formats of GET /api/v1/watch/<uuid>/difference/... */
export const DIFF_FORMATS = ['htmlcolor', 'html', 'text', 'markdown'] as const;
export type DiffFormat = (typeof DIFF_FORMATS)[number];

/** notification_format values a watch accepts ("System default" = inherit tag/global). */
export const NOTIFICATION_FORMATS = ['System default', 'text', 'html', 'htmlcolor', 'markdown'] as const;

/** POST /api/v1/notifications/test: omitted fields fall back to the watch's, tag or global ones. */
export interface NotificationTestRequest {
  notification_urls?: string[];
  notification_title?: string;
  notification_body?: string;
  notification_format?: string;
  watch_uuid?: string;
}

/** One URL's outcome of a test notification (the URL comes back with its secrets masked). */
export type NotificationTestResult = { url: string; ok: true } | { url: string; ok: false; error: string };

/** 200 answer of POST /api/v1/notifications/test. */
export interface NotificationTestResponse {
  ok: boolean;
  results: NotificationTestResult[];
}

/** One entry of GET /api/v1/notifications/log (newest first, at most 100). */
export interface NotificationLogEntry {
  /** Epoch seconds. */
  ts: number;
  watch_uuid: string | null;
  kind: 'change' | 'filter_failure' | 'test' | string;
  /** Redacted by the server (scheme, host and port only). */
  url: string;
  outcome: 'sent' | 'retrying' | 'failed' | string;
  attempt: number;
  message: string;
}
