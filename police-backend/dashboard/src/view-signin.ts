/** The sign-in page (shown whenever there is no session). */
import type { Api } from './api.js';
import { describeError } from './api.js';
import { h } from './dom.js';
import type { Session } from './types.js';

export function signInPage(
  api: Api,
  notice: string | null,
  onSignedIn: (session: Session) => void,
): HTMLElement {
  const username = h('input', {
    id: 'signin-username',
    name: 'username',
    type: 'text',
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
    'data-testid': 'signin-username',
  });
  const password = h('input', {
    id: 'signin-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'data-testid': 'signin-password',
  });
  const submit = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', 'data-testid': 'signin-submit' },
    'Sign in',
  );
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error' });

  const form = h(
    'form',
    { class: 'signin-form', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', class: 'page-title' }, 'Sign in'),
    notice && h('p', { class: 'notice notice-info', role: 'status' }, notice),
    h('div', { class: 'field' }, h('label', { for: 'signin-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    error,
    submit,
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    if (!username.value.trim() || !password.value) {
      error.textContent = 'Enter your username and password.';
      (username.value.trim() ? password : username).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    api.signIn(username.value.trim(), password.value).then(
      (session) => {
        password.value = '';
        onSignedIn(session);
      },
      (e: unknown) => {
        submit.disabled = false;
        submit.textContent = 'Sign in';
        password.value = '';
        error.textContent = describeError(e);
        password.focus();
      },
    );
  });

  queueMicrotask(() => username.focus());
  return h(
    'div',
    { class: 'signin' },
    h(
      'p',
      { class: 'brand brand-large' },
      'SmartBeacon ',
      h('span', { class: 'brand-sub' }, 'Police'),
    ),
    h('main', { id: 'main', class: 'signin-main' }, form),
  );
}
