// Import (#/import), upstream's Import page: a URL list (tags after a space, an optional tag for
// all), a Distill.io JSON export (pasted or chosen), an .xlsx file (Wachete's export or a custom
// column mapping). Every row of the file is reported: imported, or skipped and why.

import { errorMessage, isAbort } from '../api';
import { h, replace, select } from '../dom';
import { COLUMN_TYPES, postImport, remainingLines, rowLine, xlsxQuery, type ImportResult } from '../import_formats';
import { PROCESSORS } from '../restock';
import type { View } from '../router';
import { toast } from '../toast';

type Tab = 'urls' | 'distill' | 'xlsx';
const TABS: ReadonlyArray<{ id: Tab; label: string }> = [
  { id: 'urls', label: 'URL list' },
  { id: 'distill', label: 'Distill.io' },
  { id: 'xlsx', label: '.xlsx & Wachete' },
];

export const importView: View = ({ root, signal }) => {
  const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const status = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });
  const result = h('section', { class: 'card', id: 'import-report', hidden: true });

  // --- URL list
  const urls = h('textarea', { name: 'urls', id: 'import-urls', rows: 15, class: 'mono', placeholder: 'https://', spellcheck: false });
  const tag = h('input', { type: 'text', name: 'tag', id: 'import-tag', placeholder: 'tag1, tag2' });
  const processor = select('processor', [...PROCESSORS], 'text_json_diff');
  const urlsPane = h(
    'div',
    { id: 'import-pane-urls' },
    h('p', { class: 'hint' }, 'One URL per line, optionally followed by a space and tags separated by commas, e.g. ', h('code', null, 'https://example.com tag1, tag2'), '. Lines that are not imported stay in the box.'),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'URLs'), urls),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Tag for every URL (optional)'), tag),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Processor'), processor),
  );

  // --- Distill.io
  const distill = h('textarea', { name: 'distill', id: 'import-distill', rows: 15, class: 'mono', spellcheck: false, placeholder: '{"client": {"local": 1}, "data": [{"name": "…", "uri": "https://…", "config": "…", "tags": []}]}' });
  const distillFile = h('input', { type: 'file', accept: '.json,application/json' });
  distillFile.addEventListener('change', () => {
    const f = distillFile.files?.[0];
    if (f) void f.text().then((t) => (distill.value = t));
  });
  const distillPane = h(
    'div',
    { id: 'import-pane-distill', hidden: true },
    h('p', { class: 'hint' }, 'Paste Distill.io\'s export file (JSON) or choose it. Read: ', h('code', null, 'name'), ', ', h('code', null, 'uri'), ', ', h('code', null, 'tags'), ' and the first selection of ', h('code', null, 'config'), '; the rest (the schedule included) has no counterpart here.'),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Export file'), distillFile),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Export JSON'), distill),
  );

  // --- .xlsx
  const xlsxFile = h('input', { type: 'file', id: 'import-xlsx-file', accept: '.xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
  const mapping = select('file_mapping', [
    { value: 'wachete', label: 'Wachete mapping' },
    { value: 'custom', label: 'Custom mapping' },
  ], 'wachete', { id: 'import-xlsx-mapping' });
  const colInputs = [0, 1, 2, 3].map((i) => ({
    column: h('input', { type: 'number', min: 1, max: 16384, name: `col_${i}`, style: 'width: 5rem' }),
    type: select(`col_type_${i}`, [...COLUMN_TYPES], ''),
  }));
  const mappingTable = h(
    'table',
    { class: 'import-columns', hidden: true },
    h('tbody', null,
      h('tr', null, h('th', null, 'Column #'), colInputs.map((c) => h('td', null, c.column))),
      h('tr', null, h('th', null, 'Type'), colInputs.map((c) => h('td', null, c.type))),
    ),
  );
  mapping.addEventListener('change', () => (mappingTable.hidden = mapping.value !== 'custom'));
  const xlsxPane = h(
    'div',
    { id: 'import-pane-xlsx', hidden: true },
    h('p', { class: 'hint' }, 'Wachete\'s export names its columns in the first row (URL, Name, XPath, Interval (min), Dynamic wachet, Folder). A custom mapping says which column (from 1) holds what; every row is read.'),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, '.xlsx file'), xlsxFile),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'File mapping'), mapping),
    mappingTable,
  );

  const panes: Record<Tab, HTMLElement> = { urls: urlsPane, distill: distillPane, xlsx: xlsxPane };
  let active: Tab = 'urls';
  const tabButtons = TABS.map((t) =>
    h('button', { type: 'button', role: 'tab', class: 'tab', id: `import-tab-${t.id}`, 'aria-selected': t.id === active ? 'true' : 'false', onclick: () => show(t.id) }, t.label),
  );
  function show(tab: Tab): void {
    active = tab;
    TABS.forEach((t, i) => {
      panes[t.id].hidden = t.id !== tab;
      tabButtons[i]?.setAttribute('aria-selected', t.id === tab ? 'true' : 'false');
    });
  }

  const submit = h('button', { type: 'submit', class: 'primary', id: 'import-submit' }, 'Import');
  const form = h('form', { class: 'card', id: 'import-form' }, h('div', { class: 'tabs', role: 'tablist' }, tabButtons), urlsPane, distillPane, xlsxPane, h('div', null, submit), status);

  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Import'),
      h('div', { class: 'page-links' }, h('a', { href: '#/settings/import-datastore' }, 'Restore a changedetection.io backup →')),
    ),
    form,
    errorBox,
    result,
  );

  function request(): Promise<ImportResult> | string {
    if (active === 'urls') {
      if (urls.value.trim() === '') return 'Enter at least one URL';
      const body = JSON.stringify({ urls: urls.value, tag: tag.value.trim() || null, processor: processor.value });
      return postImport('/ui/import/urls', body, 'application/json', signal);
    }
    if (active === 'distill') {
      if (distill.value.trim() === '') return 'Paste or choose a Distill.io export';
      return postImport('/ui/import/distill', distill.value, 'application/json', signal);
    }
    const file = xlsxFile.files?.[0];
    if (!file) return 'Choose an .xlsx file';
    const q = xlsxQuery(mapping.value === 'custom' ? 'custom' : 'wachete', colInputs.map((c) => ({ column: c.column.value, type: c.type.value })));
    if ('error' in q) return q.error;
    return postImport(`/ui/import/xlsx?${q.query}`, file, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', signal);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    const sent = request();
    if (typeof sent === 'string') {
      errorBox.textContent = sent;
      errorBox.hidden = false;
      return;
    }
    const tab = active;
    const listText = urls.value;
    submit.disabled = true;
    status.textContent = 'Importing…';
    sent
      .then((r) => {
        status.textContent = '';
        if (tab === 'urls') urls.value = remainingLines(listText, r.rows);
        const line = (row: ImportResult['rows'][number]) => h('li', { class: row.status === 'imported' ? 'imported' : 'skipped' }, row.uuid ? h('a', { href: `#/edit/${row.uuid}` }, rowLine(row)) : rowLine(row));
        replace(
          result,
          h('h2', null, 'Report'),
          h('p', { id: 'import-summary' }, r.message),
          r.rows.length ? h('ul', { class: 'import-rows' }, r.rows.map(line)) : h('p', null, 'The file held no rows.'),
        );
        result.hidden = false;
        if (r.imported > 0) toast(`${r.imported} imported`, 'success');
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
