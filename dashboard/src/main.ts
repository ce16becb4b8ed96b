// Entry point: wires the session, the socket, the store and the router together.

import * as api from './api';
import { h, replace } from './dom';
import { currentRoute, onRouteChange, rerender, startRouter, type Route, type RouteName, type View } from './router';
import { checkSession, onSessionChange, session, getReturnTo, setReturnTo, setSession } from './session';
import { connectSocket, disconnectSocket, onConnectionChange, setRefusedHandler } from './socket';
import { store } from './store';
import { toastError } from './toast';
import { editView } from './views/edit';
import { importView } from './views/import';
import { importDatastoreView } from './views/import_datastore';
import { historyView } from './views/history';
import { listView } from './views/list';
import { loginView } from './views/login';
import { previewView } from './views/preview';
import { notificationLogView } from './views/notifications';
import { settingsView } from './views/settings';

const notFoundView: View = ({ root }) => {
  root.append(h('h1', null, 'Page not found'), h('p', null, h('a', { href: '#/' }, '← Back to the watch list')));
};

const VIEWS: Record<RouteName, View> = {
  list: listView,
  edit: editView,
  history: historyView,
  preview: previewView,
  settings: settingsView,
  notificationLog: notificationLogView,
  importDatastore: importDatastoreView,
  import: importView,
  login: loginView,
  notfound: notFoundView,
};

/** Redirects: to the login page when not logged in, away from it when logged in. */
function guard(route: Route): string | null {
  if (!session().authenticated) {
    if (route.name === 'login') return null;
    setReturnTo(location.hash || '#/');
    return '#/login';
  }
  return route.name === 'login' ? getReturnTo() : null;
}

// --- header -----------------------------------------------------------------------------

const connStatus = document.getElementById('conn-status');
const logoutBtn = document.getElementById('logout') as HTMLButtonElement | null;

onConnectionChange((connected) => {
  if (!connStatus) return;
  connStatus.textContent = connected ? 'live' : 'offline';
  connStatus.classList.toggle('connected', connected);
  connStatus.title = connected ? 'Live updates connected' : 'Live updates disconnected: data is refreshed over HTTP';
});

onRouteChange((route) => {
  // The notification log and the import are sub-pages of the settings.
  const section = route.name === 'notificationLog' || route.name === 'importDatastore' ? 'settings' : route.name;
  document.querySelectorAll<HTMLAnchorElement>('.mainnav a[data-route]').forEach((a) => {
    if (a.dataset['route'] === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
});

logoutBtn?.addEventListener('click', () => {
  api
    .logout()
    .catch((err: unknown) => toastError(api.errorMessage(err)))
    .finally(() => {
      setSession({ password_required: session().password_required, authenticated: false });
      void checkSession().catch(() => undefined);
    });
});

// Unread changes in the tab title.
const baseTitle = document.title || 'changewatch';
store.subscribe((e) => {
  if (e.type !== 'reset' && e.type !== 'counters') return;
  const n = store.counters.unread_changes_count;
  document.title = n > 0 ? `(${n}) ${baseTitle}` : baseTitle;
});

// --- session ----------------------------------------------------------------------------

onSessionChange((s) => {
  document.body.classList.toggle('authenticated', s.authenticated);
  if (logoutBtn) logoutBtn.hidden = !(s.authenticated && s.password_required);
  if (s.authenticated) connectSocket();
  else disconnectSocket();
  // Leave a page the new state does not allow (or the login page after logging in).
  if (guard(currentRoute()) !== null) rerender();
});

// A 401/403 from the server or a refused socket usually means the login expired: re-check
// (at most every few seconds, a page can fail several requests at once).
let lastAuthCheck = 0;
function recheckSession(): void {
  const now = Date.now();
  if (now - lastAuthCheck < 3000) return;
  lastAuthCheck = now;
  void checkSession().catch(() => undefined);
}
api.setAuthFailureHandler(recheckSession);
setRefusedHandler(recheckSession);

// --- start ------------------------------------------------------------------------------

function boot(): void {
  const app = document.getElementById('app');
  if (!app) return;
  checkSession()
    .then(() => startRouter(app, VIEWS, guard))
    .catch((err: unknown) => {
      const retry = h('button', { type: 'button', class: 'primary', onclick: () => boot() }, 'Retry');
      replace(
        app,
        h('h1', null, 'changewatch'),
        h('p', { class: 'form-error' }, `Cannot reach the changewatch server: ${api.errorMessage(err)}`),
        retry,
      );
    });
}

boot();
