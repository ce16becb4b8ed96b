// Import from changedetection.io (#/settings/import-datastore): upload the zip upstream's
// Backups page makes, dry run first if wanted, and read what came over and what did not.

import { errorMessage, isAbort } from '../api';
import { problemLine, reportSummary, uploadBackupZip } from '../datastore_import';
import { h, replace } from '../dom';
import type { View } from '../router';
import { toast } from '../toast';

export const importDatastoreView: View = ({ root, signal }) => {
  const file = h('input', { type: 'file', name: 'backup', accept: '.zip,application/zip', required: true });
  const dry = h('input', { type: 'checkbox', name: 'dry_run', checked: true });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'import-datastore-submit' }, 'Import');
  const status = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });
  const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const result = h('section', { class: 'card', id: 'import-datastore-report', hidden: true });
  const form = h(
    'form',
    { class: 'card', id: 'import-datastore-form' },
    h('label', null, 'Backup zip ', file),
    h('label', null, dry, ' Dry run: report what would be imported, change nothing'),
    h('div', null, submit),
    status,
  );
  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Import from changedetection.io'),
      h('div', { class: 'page-links' }, h('a', { href: '#/settings' }, '← Settings')),
    ),
    h(
      'p',
      { class: 'hint' },
      'The zip from changedetection.io\'s Backups page: watches keep their uuids, tags, notification URLs and full history. ' +
        'What is here already is left as it is, so running it again changes nothing. A whole datastore directory is imported with ',
      h('code', null, 'changewatch import-datastore DIR'),
      '.',
    ),
    form,
    errorBox,
    result,
  );

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return;
    submit.disabled = true;
    errorBox.hidden = true;
    status.textContent = `Uploading ${chosen.name}…`;
    uploadBackupZip(chosen, dry.checked, signal)
      .then((report) => {
        status.textContent = '';
        const problems = report.problems.length
          ? [h('h2', null, `Not imported (${report.problems.length})`), h('ul', { class: 'import-problems' }, report.problems.map((p) => h('li', null, problemLine(p))))]
          : [h('p', null, 'Everything came over.')];
        replace(result, h('h2', null, 'Report'), h('ul', null, reportSummary(report).map((l) => h('li', null, l))), ...problems);
        result.hidden = false;
        if (!report.dry_run) toast('Import finished', 'success');
      })
      .catch((err: unknown) => {
        if (isAbort(err)) return;
        status.textContent = '';
        errorBox.textContent = errorMessage(err);
        errorBox.hidden = false;
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
};
