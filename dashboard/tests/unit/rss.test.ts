// The feed links the list, history and settings pages show.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { feedUrl } from '../../src/rss';

test('feed links carry the token and encode their parameters', () => {
  assert.equal(feedUrl('/rss', 'abc'), '/rss?token=abc');
  assert.equal(feedUrl('/rss', 'abc', { tag: 'a&b c' }), '/rss?tag=a%26b+c&token=abc');
  assert.equal(feedUrl('/rss/watch/u-1', 't'), '/rss/watch/u-1?token=t');
  assert.equal(feedUrl('/rss', ''), '', 'no token, no link');
});
