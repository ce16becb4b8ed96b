// Toast notifications in #toasts (each a `.toast`). Messages are text only.

import { h } from './dom';

export type ToastType = 'success' | 'error' | 'info' | 'warning';

const MAX_TOASTS = 5;

function container(): HTMLElement {
  let el = document.getElementById('toasts');
  if (!el) {
    el = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(el);
  }
  return el;
}

/** Shows `message` for a few seconds (errors stay longer); click to dismiss. */
export function toast(message: string, type: string = 'info'): void {
  const kind: ToastType = type === 'success' || type === 'error' || type === 'warning' ? type : 'info';
  const box = container();
  const el = h(
    'div',
    { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', title: 'Click to dismiss' },
    message,
  );
  const remove = (): void => el.remove();
  el.addEventListener('click', remove);
  box.appendChild(el);
  // Keep a burst of messages (e.g. a bulk operation) from covering the page.
  while (box.children.length > MAX_TOASTS) box.firstElementChild?.remove();
  window.setTimeout(remove, kind === 'error' ? 9000 : 5000);
}

export const toastError = (message: string): void => toast(message, 'error');
