// Links to the server's RSS feeds (upstream's /rss, /rss/tag/<uuid>, /rss/watch/<uuid>), which
// feed readers open with the settings' RSS token in the query instead of a session.

/** The feed at `path` with `params` and the token; '' when there is no token to give. */
export function feedUrl(path: string, token: string, params: Record<string, string> = {}): string {
  if (!token) return '';
  const q = new URLSearchParams({ ...params, token });
  return `${path}?${q.toString()}`;
}
