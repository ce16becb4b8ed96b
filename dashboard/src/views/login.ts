// Login page (#/login), shown when the dashboard is password protected.

import * as api from '../api';
import { h } from '../dom';
import type { View } from '../router';
import { setSession } from '../session';

export const loginView: View = ({ root, signal }) => {
  const password = h('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'aria-label': 'Password',
  });
  const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    { id: 'login-form', class: 'login-form' },
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Password'), password),
    error,
    submit,
  );
  root.append(h('section', { class: 'card login' }, h('h1', null, 'Log in'), form));
  password.focus();

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    api
      .login(password.value)
      .then(() => {
        if (signal.aborted) return;
        // The session listener (main.ts) connects the socket and the router's guard moves on
        // to the page that was asked for.
        setSession({ password_required: true, authenticated: true });
      })
      .catch((err: unknown) => {
        if (signal.aborted) return;
        error.textContent = api.errorMessage(err);
        error.hidden = false;
        password.select();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
};
