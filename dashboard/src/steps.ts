// Browser steps: the operations upstream's Browser Steps editor offers (names as its exports
// and API clients carry them) and the edit page's editor for a watch's `browser_steps`.
//
// The table mirrors ACTIONS in crates/core/src/model/steps.rs (tests/unit/steps.test.ts
// compares the two): the same names in the same order, and whether each needs a selector and
// a value, as upstream's editor shows or hides the two inputs. The API refuses an operation
// it does not know, a missing selector or value and a value it cannot use, with a 400 naming
// `browser_steps`; the editor leaves that judgement to the server and sends what was typed.

import { h } from './dom';
import type { BrowserStep } from './types';

export interface StepOperation {
  /** Upstream's display name: what the editor shows and what is saved. */
  name: string;
  selector: boolean;
  value: boolean;
  /** Placeholder of the value input. */
  valueHint?: string;
}

export const BROWSER_STEP_OPERATIONS: readonly StepOperation[] = [
  { name: 'Goto site', selector: false, value: false },
  { name: 'Goto URL', selector: false, value: true, valueHint: 'https://…' },
  { name: 'Click element', selector: true, value: false },
  { name: 'Click element if exists', selector: true, value: false },
  { name: 'Click element containing text', selector: false, value: true, valueHint: 'Text of the element' },
  { name: 'Click element containing text if exists', selector: false, value: true, valueHint: 'Text of the element' },
  { name: 'Click X,Y', selector: false, value: true, valueHint: 'x, y — e.g. 100, 90' },
  { name: 'Enter text in field', selector: true, value: true, valueHint: 'Text to type' },
  { name: 'Execute JS', selector: false, value: true, valueHint: 'JavaScript' },
  { name: 'Make all child elements visible', selector: true, value: false },
  { name: 'Press Enter', selector: false, value: false },
  { name: 'Press Page Up', selector: false, value: false },
  { name: 'Press Page Down', selector: false, value: false },
  { name: 'Select by label', selector: true, value: true, valueHint: 'Label of the option' },
  { name: '<select> by option text', selector: true, value: true, valueHint: 'Text of the option' },
  { name: 'Scroll down', selector: false, value: false },
  { name: 'Check checkbox', selector: true, value: false },
  { name: 'Uncheck checkbox', selector: true, value: false },
  { name: 'Wait for seconds', selector: false, value: true, valueHint: 'Seconds, e.g. 2 (empty = 1)' },
  { name: 'Wait for text', selector: false, value: true, valueHint: 'Text to wait for' },
  { name: 'Wait for text in element', selector: true, value: true, valueHint: 'Text to wait for' },
  { name: 'Remove elements', selector: true, value: false },
];

/** Upstream's "nothing chosen yet" row; the server drops such rows when saving. */
export const STEP_PLACEHOLDER = 'Choose one';

const SELECTOR_HINT = 'CSS selector, or XPath (xpath=… or /…)';

/** A step name as the server matches it: lower case, runs of other characters as one `_`. */
export function normalizeOperation(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

/** The operation a (possibly differently spelt) name means, if any. */
export function findOperation(name: string | null | undefined): StepOperation | undefined {
  if (!name) return undefined;
  const wanted = normalizeOperation(name);
  return BROWSER_STEP_OPERATIONS.find((op) => normalizeOperation(op.name) === wanted);
}

/**
 * Which inputs a row shows. The placeholder needs neither; a name the dashboard does not
 * know (stored by an API client) keeps both, so nothing it carries is hidden or lost.
 */
export function stepNeeds(operation: string): { selector: boolean; value: boolean } {
  if (operation === '' || operation === STEP_PLACEHOLDER) return { selector: false, value: false };
  const op = findOperation(operation);
  return op ? { selector: op.selector, value: op.value } : { selector: true, value: true };
}

/**
 * What one row saves: all three keys, the inputs the operation uses exactly as typed, and
 * null for the ones it does not use (hidden, so not what the user sees as set).
 */
export function stepBody(operation: string, selector: string, value: string): BrowserStep {
  const needs = stepNeeds(operation);
  return {
    operation,
    selector: needs.selector ? selector : null,
    optional_value: needs.value ? value : null,
  };
}

/** Returns a copy of `list` with item `index` moved by `delta` places (clamped to the ends). */
export function moveItem<T>(list: readonly T[], index: number, delta: number): T[] {
  const out = list.slice();
  if (index < 0 || index >= out.length) return out;
  const target = Math.min(Math.max(index + delta, 0), out.length - 1);
  const [item] = out.splice(index, 1);
  if (item !== undefined) out.splice(target, 0, item);
  return out;
}

// ---------------------------------------------------------------------------------------
// The editor

const LIST_CLASS = 'browser-steps';

export interface StepsEditorOptions {
  /** 1-based position of the step the last check failed at (the watch's read-only field). */
  failedStep?: number | null;
  /** The watch's last error, shown with the failed step. */
  lastError?: string | false | null;
  /** Called after any change (rows added, removed, moved, edited). */
  onChange?: () => void;
}

/**
 * The browser-steps editor: one row per step (operation, selector, value; move up/down,
 * remove) and an "Add step" button. Controls are named `browser_steps.<i>.<key>` (0-based,
 * renumbered after each move); `readBrowserSteps` reads them back in order.
 */
export function browserStepsEditor(steps: readonly BrowserStep[], opts: StepsEditorOptions = {}): HTMLElement {
  const list = h('ol', { class: LIST_CLASS });
  const empty = h('p', { class: 'hint steps-empty' }, 'No steps: the page is read as it loads.');
  const addBtn = h('button', { type: 'button', 'data-action': 'step-add' }, '+ Add step');

  const changed = (): void => {
    renumber();
    opts.onChange?.();
  };

  const renumber = (): void => {
    const rows = Array.from(list.children) as HTMLElement[];
    rows.forEach((row, i) => {
      row.dataset.step = String(i + 1);
      const num = row.querySelector('.step-number');
      if (num) num.textContent = `${i + 1}.`;
      for (const key of ['operation', 'selector', 'optional_value'] as const) {
        const el = row.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-key=${key}]`);
        if (el) el.name = `browser_steps.${i}.${key}`;
      }
      const up = row.querySelector<HTMLButtonElement>('button[data-action=step-up]');
      const down = row.querySelector<HTMLButtonElement>('button[data-action=step-down]');
      const remove = row.querySelector<HTMLButtonElement>('button[data-action=step-remove]');
      if (up) {
        up.disabled = i === 0;
        up.setAttribute('aria-label', `Move step ${i + 1} up`);
      }
      if (down) {
        down.disabled = i === rows.length - 1;
        down.setAttribute('aria-label', `Move step ${i + 1} down`);
      }
      remove?.setAttribute('aria-label', `Remove step ${i + 1}`);
    });
    empty.hidden = rows.length > 0;
  };

  const makeRow = (step: BrowserStep | null, failed: boolean): HTMLElement => {
    const operation = step?.operation || STEP_PLACEHOLDER;
    const options = [STEP_PLACEHOLDER, ...BROWSER_STEP_OPERATIONS.map((o) => o.name)];
    // A stored name the list does not have (another spelling, an unknown operation) stays
    // selectable as it is, so loading and saving never rewrites it.
    if (!options.includes(operation)) options.push(operation);
    const opSelect = h('select', { class: 'step-operation', 'data-key': 'operation', 'aria-label': 'Operation' });
    for (const name of options) opSelect.appendChild(h('option', { value: name, selected: name === operation }, name));

    const selector = h('input', {
      type: 'text',
      class: 'step-selector',
      'data-key': 'selector',
      'aria-label': 'Selector',
      spellcheck: 'false',
      autocomplete: 'off',
      placeholder: SELECTOR_HINT,
      value: step?.selector ?? '',
    });
    const value = h('input', {
      type: 'text',
      class: 'step-value',
      'data-key': 'optional_value',
      'aria-label': 'Value',
      spellcheck: 'false',
      autocomplete: 'off',
      value: step?.optional_value ?? '',
    });
    const selectorCell = h('label', { class: 'field step-field step-input' }, h('span', { class: 'field-label' }, 'Selector'), selector);
    const valueCell = h('label', { class: 'field step-field step-input' }, h('span', { class: 'field-label' }, 'Value'), value);

    // As upstream's editor: the inputs an operation does not use are hidden (and disabled,
    // so they are skipped by the keyboard); what was typed in them is kept for a switch back.
    const sync = (): void => {
      const needs = stepNeeds(opSelect.value);
      selector.disabled = !needs.selector;
      value.disabled = !needs.value;
      selectorCell.classList.toggle('unused', !needs.selector);
      valueCell.classList.toggle('unused', !needs.value);
      value.placeholder = findOperation(opSelect.value)?.valueHint ?? '';
    };
    sync();

    const row = h(
      'li',
      { class: failed ? 'step-row step-failed' : 'step-row' },
      h('span', { class: 'step-number', 'aria-hidden': 'true' }),
      h('label', { class: 'field step-field step-op' }, h('span', { class: 'field-label' }, 'Operation'), opSelect),
      selectorCell,
      valueCell,
      h(
        'div',
        { class: 'step-actions' },
        h('button', { type: 'button', 'data-action': 'step-up' }, '↑'),
        h('button', { type: 'button', 'data-action': 'step-down' }, '↓'),
        h('button', { type: 'button', class: 'danger', 'data-action': 'step-remove' }, '✕'),
      ),
      failed
        ? h(
            'p',
            { class: 'step-error-note' },
            'The last check failed at this step',
            typeof opts.lastError === 'string' && opts.lastError ? `: ${opts.lastError}` : '.',
          )
        : null,
    );
    opSelect.addEventListener('change', () => {
      sync();
      changed();
    });
    row.addEventListener('input', () => opts.onChange?.());
    row.addEventListener('click', (ev) => {
      const btn = (ev.target as Element).closest('button[data-action]');
      if (!(btn instanceof HTMLButtonElement) || btn.disabled) return;
      const action = btn.dataset.action;
      if (action === 'step-remove') {
        const next = (row.nextElementSibling ?? row.previousElementSibling) as HTMLElement | null;
        row.remove();
        changed();
        (next?.querySelector<HTMLElement>('.step-operation') ?? addBtn).focus();
      } else if (action === 'step-up' || action === 'step-down') {
        const rows = Array.from(list.children);
        const moved = moveItem(rows, rows.indexOf(row), action === 'step-up' ? -1 : 1);
        list.replaceChildren(...moved);
        changed();
        // Keep the keyboard on the same button when it still applies.
        (btn.disabled ? opSelect : btn).focus();
      }
    });
    return row;
  };

  const failedAt = opts.failedStep ?? 0;
  steps.forEach((s, i) => list.appendChild(makeRow(s, i + 1 === failedAt)));
  addBtn.addEventListener('click', () => {
    const row = makeRow(null, false);
    list.appendChild(row);
    changed();
    row.querySelector<HTMLElement>('.step-operation')?.focus();
  });
  renumber();

  return h('div', { class: 'steps-editor' }, list, empty, h('div', { class: 'steps-add' }, addBtn));
}

/** The editor's rows in order, as the API takes them. */
export function readBrowserSteps(root: ParentNode): BrowserStep[] {
  return Array.from(root.querySelectorAll(`ol.${LIST_CLASS} > li.step-row`), (row) => {
    const get = (key: string): string =>
      row.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-key=${key}]`)?.value ?? '';
    return stepBody(get('operation'), get('selector'), get('optional_value'));
  });
}
