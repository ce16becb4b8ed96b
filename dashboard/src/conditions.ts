// Conditions: upstream's conditions editor for a watch's `conditions` rows ({field, operator,
// value}) joined by `conditions_match_logic` (ALL / ANY). A change is reported only when the
// rules hold on the text after the filters.
//
// The tables mirror FIELDS and OPERATORS in crates/core/src/conditions.rs
// (tests/unit/conditions.test.ts compares them). The server checks each row when saving (a
// 400 naming `conditions` and the row); the editor sends what was typed.

import { h, select } from './dom';
import type { Condition } from './types';

export const CONDITION_FIELDS: ReadonlyArray<{ value: string; label: string }> = [
  { value: 'extracted_number', label: "Extracted number after 'Filters & Triggers'" },
  { value: 'page_filtered_text', label: "Page text after 'Filters & Triggers'" },
  { value: 'word_count', label: 'Word count of content' },
  { value: 'levenshtein_ratio', label: 'Levenshtein - Text similarity ratio' },
  { value: 'levenshtein_distance', label: 'Levenshtein - Text change distance' },
  { value: 'levenshtein_similarity', label: 'Levenshtein - Percent similar' },
];

export const CONDITION_OPERATORS: ReadonlyArray<{ value: string; label: string }> = [
  { value: '>', label: 'Greater Than' },
  { value: '<', label: 'Less Than' },
  { value: '>=', label: 'Greater Than or Equal To' },
  { value: '<=', label: 'Less Than or Equal To' },
  { value: '==', label: 'Equals' },
  { value: '!=', label: 'Not Equals' },
  { value: 'in', label: 'Contains' },
  { value: '!in', label: 'Does NOT Contain' },
  { value: 'starts_with', label: 'Text Starts With' },
  { value: 'ends_with', label: 'Text Ends With' },
  { value: 'length_min', label: 'Length minimum' },
  { value: 'length_max', label: 'Length maximum' },
  { value: 'contains_regex', label: 'Text Matches Regex' },
  { value: '!contains_regex', label: 'Text Does NOT Match Regex' },
];

export const MATCH_LOGIC: ReadonlyArray<{ value: string; label: string }> = [
  { value: 'ALL', label: 'Match all of the following' },
  { value: 'ANY', label: 'Match any of the following' },
];

const LIST_CLASS = 'conditions';

/** The rows to save: a row left wholly empty is no rule (upstream skips it too). */
export function conditionRows(rows: readonly Condition[]): Condition[] {
  return rows
    .map((r) => ({ field: r.field ?? '', operator: r.operator ?? '', value: r.value ?? '' }))
    .filter((r) => r.field !== '' || r.operator !== '' || r.value.trim() !== '');
}

function row(c: Condition, changed: () => void): HTMLElement {
  const choose = (what: string): { value: string; label: string } => ({ value: '', label: `Choose one - ${what}` });
  // A stored value the lists do not have stays as it is (the server says what is wrong).
  const withCurrent = (list: ReadonlyArray<{ value: string; label: string }>, v: string) =>
    v && !list.some((o) => o.value === v) ? [...list, { value: v, label: v }] : list;
  const fieldSel = select('', [choose('Field'), ...withCurrent(CONDITION_FIELDS, c.field)], c.field, {
    'data-key': 'field',
    'aria-label': 'Field',
  });
  const opSel = select('', [choose('Operator'), ...withCurrent(CONDITION_OPERATORS, c.operator)], c.operator, {
    'data-key': 'operator',
    'aria-label': 'Operator',
  });
  const value = h('input', { type: 'text', value: c.value, placeholder: 'A value', 'data-key': 'value', 'aria-label': 'Value' });
  const li = h('li', { class: 'condition-row' }, fieldSel, opSel, value);
  const remove = h('button', { type: 'button', 'data-action': 'condition-remove', title: 'Remove this rule' }, '×');
  remove.addEventListener('click', () => {
    li.remove();
    changed();
  });
  li.appendChild(remove);
  return li;
}

/** The editor: the ALL/ANY choice, one row per rule and an "Add rule" button. */
export function conditionsEditor(rows: readonly Condition[], logic: string): HTMLElement {
  const list = h('ol', { class: LIST_CLASS });
  const empty = h('p', { class: 'hint conditions-empty' }, 'No rules: every change is reported.');
  const sync = (): void => {
    empty.hidden = list.children.length > 0;
  };
  for (const c of conditionRows(rows)) list.appendChild(row(c, sync));
  const add = h('button', { type: 'button', 'data-action': 'condition-add' }, '+ Add rule');
  add.addEventListener('click', () => {
    list.appendChild(row({ field: '', operator: '', value: '' }, sync));
    sync();
  });
  sync();
  return h(
    'div',
    { class: 'conditions-editor' },
    select('conditions_match_logic', MATCH_LOGIC, logic === 'ANY' ? 'ANY' : 'ALL', { 'aria-label': 'Match' }),
    empty,
    list,
    add,
  );
}

/** The editor's rows in order, as the API takes them. */
export function readConditions(root: ParentNode): Condition[] {
  return conditionRows(
    Array.from(root.querySelectorAll(`ol.${LIST_CLASS} > li.condition-row`), (li) => {
      const get = (key: string): string =>
        li.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-key=${key}]`)?.value ?? '';
      return { field: get('field'), operator: get('operator'), value: get('value') };
    }),
  );
}
