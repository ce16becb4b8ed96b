// Hash router: #/ (list), #/edit/<uuid>, #/history/<uuid>, #/preview/<uuid>, #/settings,
// #/settings/notification-log, #/settings/import-datastore, #/import, #/login. Each view renders into #app and gets an AbortSignal that fires when the user
// navigates away, so late responses never draw into the next page.

export type RouteName =
  | 'list'
  | 'edit'
  | 'history'
  | 'preview'
  | 'settings'
  | 'notificationLog'
  | 'importDatastore'
  | 'import'
  | 'login'
  | 'notfound';

export interface Route {
  name: RouteName;
  uuid?: string;
}

export interface ViewContext {
  root: HTMLElement;
  route: Route;
  signal: AbortSignal;
}

/** Renders a page; may return a cleanup function (timers, subscriptions). */
export type View = (ctx: ViewContext) => void | (() => void);

/** Loose shape check; the server answers 404 for anything that is not a real uuid. */
const UUID_RE = /^[0-9A-Za-z-]{1,64}$/;

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\?.*$/, '');
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return { name: 'list' };
  const [head, arg, ...rest] = parts;
  if (rest.length === 0 && arg === undefined) {
    if (head === 'settings') return { name: 'settings' };
    if (head === 'login') return { name: 'login' };
    if (head === 'import') return { name: 'import' };
  }
  if (rest.length === 0 && head === 'settings' && arg === 'notification-log') return { name: 'notificationLog' };
  if (rest.length === 0 && head === 'settings' && arg === 'import-datastore') return { name: 'importDatastore' };
  if (rest.length === 0 && arg !== undefined && UUID_RE.test(arg)) {
    if (head === 'edit' || head === 'history' || head === 'preview') return { name: head, uuid: arg };
  }
  return { name: 'notfound' };
}

export function navigate(hash: string, replace = false): void {
  const target = hash.startsWith('#') ? hash : `#${hash}`;
  if (location.hash === target) {
    rerender();
    return;
  }
  if (replace) {
    history.replaceState(null, '', target);
    rerender();
  } else {
    location.hash = target;
  }
}

let views: Record<RouteName, View> | null = null;
/** Returns a hash to redirect to, or null to render the route. */
let guard: (route: Route) => string | null = () => null;
let root: HTMLElement | null = null;
let current: { abort: AbortController; cleanup: (() => void) | void } | null = null;
const routeListeners = new Set<(r: Route) => void>();

export function onRouteChange(fn: (r: Route) => void): void {
  routeListeners.add(fn);
}

export function currentRoute(): Route {
  return parseRoute(location.hash);
}

/** Unmounts the current view and renders the one for the current hash. */
export function rerender(): void {
  if (!views || !root) return;
  const route = currentRoute();
  const redirect = guard(route);
  if (redirect !== null && redirect !== location.hash) {
    history.replaceState(null, '', redirect);
    rerender();
    return;
  }
  if (current) {
    current.abort.abort();
    try {
      current.cleanup?.();
    } catch (err) {
      console.error('view cleanup failed', err);
    }
  }
  root.replaceChildren();
  const abort = new AbortController();
  current = { abort, cleanup: undefined };
  for (const fn of routeListeners) fn(route);
  try {
    current.cleanup = views[route.name]({ root, route, signal: abort.signal });
  } catch (err) {
    console.error('view failed', err);
  }
  window.scrollTo(0, 0);
}

export function startRouter(
  mount: HTMLElement,
  viewTable: Record<RouteName, View>,
  routeGuard: (route: Route) => string | null,
): void {
  root = mount;
  views = viewTable;
  guard = routeGuard;
  window.addEventListener('hashchange', rerender);
  rerender();
}
