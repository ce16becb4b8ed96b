// The datastore import page: its route and how it words the server's report.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { problemLine, reportSummary, type ImportReport } from '../../src/datastore_import';
import { parseRoute } from '../../src/router';

test('the import page is a sub-page of the settings', () => {
  assert.deepEqual(parseRoute('#/settings/import-datastore'), { name: 'importDatastore' });
  assert.deepEqual(parseRoute('#/settings/import-datastore/x'), { name: 'notfound' });
});

test('the report in sentences, dry or not, and each problem with its field', () => {
  const report: ImportReport = {
    layout: 'changedetection.json',
    dry_run: true,
    settings: 'imported',
    tags: { added: 1, present: 0, refused: 0 },
    watches: { added: 2, present: 1, refused: 1 },
    snapshots: { added: 7, present: 3, refused: 0 },
    problems: [],
  };
  assert.deepEqual(reportSummary(report), [
    'Dry run of a changedetection.json datastore',
    'Settings: imported',
    'Tags: 1 would be imported, 0 already here, 0 not imported',
    'Watches: 2 would be imported, 1 already here, 1 not imported',
    'Snapshots: 7 would be imported, 3 already here, 0 not imported',
  ]);
  assert.equal(reportSummary({ ...report, dry_run: false })[3], 'Watches: 2 imported, 1 already here, 1 not imported');
  assert.equal(
    problemLine({ item: 'watch 6a0e', field: 'notification_urls', reason: "'x://' is not a valid AppRise URL." }),
    "watch 6a0e — notification_urls: 'x://' is not a valid AppRise URL.",
  );
  assert.equal(problemLine({ item: 'watch not-a-uuid', reason: 'its uuid is not a canonical UUID' }), 'watch not-a-uuid: its uuid is not a canonical UUID');
});
