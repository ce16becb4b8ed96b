// Login state (GET /ui/session). When a UI password is set and the browser is not logged in,
// every page except #/login redirects there.

import { getSession } from './api';
import type { SessionInfo } from './types';

let current: SessionInfo = { password_required: false, authenticated: false };
let known = false;
const listeners = new Set<(s: SessionInfo) => void>();

export function session(): SessionInfo {
  return current;
}

/** Whether the session has been fetched at least once. */
export function sessionKnown(): boolean {
  return known;
}

export function onSessionChange(fn: (s: SessionInfo) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function setSession(next: SessionInfo): void {
  const changed =
    !known ||
    next.authenticated !== current.authenticated ||
    next.password_required !== current.password_required;
  current = { password_required: Boolean(next.password_required), authenticated: Boolean(next.authenticated) };
  known = true;
  if (changed) for (const fn of listeners) fn(current);
}

let pending: Promise<SessionInfo> | null = null;

/** Fetches the session (concurrent callers share one request). */
export function checkSession(): Promise<SessionInfo> {
  pending ??= getSession()
    .then((s) => {
      setSession(s);
      return current;
    })
    .finally(() => {
      pending = null;
    });
  return pending;
}

/**
 * The page asked for before the login page was shown, to go to after logging in. Read (not
 * consumed) by the router's guard, which may run more than once for one navigation.
 */
let returnTo = '#/';
export function setReturnTo(hash: string): void {
  returnTo = hash && !hash.startsWith('#/login') ? hash : '#/';
}
export function getReturnTo(): string {
  return returnTo;
}
