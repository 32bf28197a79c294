import { useSignal } from '@preact/signals';
import { api, setCsrf } from '../shared/api.ts';
import { loadMe, safeNext } from '../shared/platform-session.ts';
import { navigate, param } from '../shared/router.ts';
import { Field, Form, Notice, Submit, Title, useForm } from '../shared/ui.tsx';
import { boot } from './app.tsx';
import { storedReferral } from './sharing.tsx';

/** Sign-in, sign-up, invitations, password reset and email verification: the portal's own screens. */

interface LoginAnswer {
  csrf_token: string;
  mfa_required: boolean;
}

async function finish(next: string) {
  await loadMe();
  navigate(safeNext(next, '/app'), true);
  // The admin is another app: a full load.
  if (location.pathname.startsWith('/admin')) location.reload();
}

export async function signInWith(email: string, password: string): Promise<LoginAnswer> {
  const r = await api<LoginAnswer>('POST', '/api/v1/auth/login', { email, password });
  setCsrf(r.csrf_token);
  return r;
}

export function SignIn() {
  const email = useSignal(param('email') ?? '');
  const password = useSignal('');
  const code = useSignal('');
  const step = useSignal<'password' | 'mfa'>('password');
  const form = useForm();
  const next = param('next') ?? '/app';
  const sso = boot.sign_in;
  return (
    <main id="main" class="narrow">
      <Title>Sign in</Title>
      {sso.password ? null : (
        <p>
          This platform signs its users in through their organisation's identity provider (single sign-on,
          below).
        </p>
      )}
      {step.value === 'password' ? (
        <Form
          state={form}
          label="Sign in"
          onSubmit={async () => {
            const r = await signInWith(email.value.trim(), password.value);
            if (r.mfa_required) step.value = 'mfa';
            else await finish(next);
          }}
        >
          <Field
            label="Email"
            name="email"
            type="email"
            autocomplete="username"
            value={email}
            form={form}
            required
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autocomplete="current-password"
            value={password}
            form={form}
            required
          />
          <div class="actions">
            <Submit state={form}>Sign in</Submit>
          </div>
        </Form>
      ) : (
        <Form
          state={form}
          label="Second factor"
          onSubmit={async () => {
            const c = code.value.replace(/\s+/g, '');
            await api('POST', '/api/v1/auth/mfa', /^\d{6}$/.test(c) ? { code: c } : { recovery_code: c });
            await finish(next);
          }}
        >
          <p>Enter the 6-digit code from your authenticator app, or a recovery code.</p>
          <Field
            label="Authentication code"
            name="code"
            value={code}
            form={form}
            autocomplete="one-time-code"
            inputMode="numeric"
            autoFocus
          />
          <div class="actions">
            <Submit state={form}>Verify</Submit>
          </div>
        </Form>
      )}
      <p>
        <a href="/app/sign-up">Create an account</a> · <a href="/app/reset-password">Forgot your password?</a>
      </p>
      {sso.oidc || sso.saml ? (
        <div class="actions">
          {sso.oidc ? (
            <a
              class="button"
              href={`/sso/oidc/login?return_to=${encodeURIComponent(safeNext(next, '/app'))}`}
              data-reload=""
            >
              Sign in with SSO
            </a>
          ) : null}
          {sso.saml ? (
            <a
              class="button"
              href={`/sso/saml/login?return_to=${encodeURIComponent(safeNext(next, '/app'))}`}
              data-reload=""
            >
              Sign in with SAML
            </a>
          ) : null}
        </div>
      ) : null}
    </main>
  );
}

export function SignUp() {
  const email = useSignal('');
  const password = useSignal('');
  const form = useForm();
  const done = useSignal<string | null>(null);
  return (
    <main id="main" class="narrow">
      <Title>Create an account</Title>
      {done.value ? (
        <Notice>{done.value}</Notice>
      ) : (
        <Form
          state={form}
          label="Create an account"
          onSubmit={async () => {
            const r = await api<{ status: string }>('POST', '/api/v1/auth/signup', {
              email: email.value.trim(),
              password: password.value,
              ref: storedReferral(),
            });
            if (r.status === 'created') {
              const l = await signInWith(email.value.trim(), password.value);
              if (!l.mfa_required) return finish('/app');
            }
            done.value = 'Check your inbox: we sent you a link to confirm your address, then sign in.';
          }}
        >
          <Field
            label="Email"
            name="email"
            type="email"
            autocomplete="email"
            value={email}
            form={form}
            required
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autocomplete="new-password"
            hint="(at least 12 characters)"
            value={password}
            form={form}
            required
          />
          <div class="actions">
            <Submit state={form}>Create account</Submit>
          </div>
        </Form>
      )}
      <p>
        Already have an account? <a href="/app/sign-in">Sign in</a>
      </p>
    </main>
  );
}

export function AcceptInvite() {
  const token = param('token') ?? '';
  const name = useSignal('');
  const password = useSignal('');
  const form = useForm();
  return (
    <main id="main" class="narrow">
      <Title>Accept the invitation</Title>
      <p>Choose a password to join.</p>
      <Form
        state={form}
        label="Accept the invitation"
        onSubmit={async () => {
          const r = await api<{ user: { email: string } }>('POST', '/api/v1/invitations/accept', {
            token,
            password: password.value,
            ...(name.value.trim() ? { name: name.value.trim() } : {}),
          });
          try {
            const l = await signInWith(r.user.email, password.value);
            if (!l.mfa_required) return finish('/app');
          } catch {
            // Sign-in refused (e.g. MFA enforced): the sign-in screen says why.
          }
          navigate(`/app/sign-in?email=${encodeURIComponent(r.user.email)}`, true);
        }}
      >
        <Field label="Your name" name="name" autocomplete="name" value={name} form={form} />
        <Field
          label="Password"
          name="password"
          type="password"
          autocomplete="new-password"
          hint="(at least 12 characters)"
          value={password}
          form={form}
          required
        />
        <div class="actions">
          <Submit state={form}>Accept the invitation</Submit>
        </div>
      </Form>
    </main>
  );
}

export function ResetPassword() {
  const token = param('token');
  const email = useSignal('');
  const password = useSignal('');
  const form = useForm();
  const done = useSignal<string | null>(null);
  return (
    <main id="main" class="narrow">
      <Title>{token ? 'Choose a new password' : 'Reset your password'}</Title>
      {done.value ? (
        <Notice>
          {done.value} <a href="/app/sign-in">Sign in</a>
        </Notice>
      ) : token ? (
        <Form
          state={form}
          label="New password"
          onSubmit={async () => {
            await api('POST', '/api/v1/auth/password-reset/confirm', { token, password: password.value });
            done.value = 'Your password is changed.';
          }}
        >
          <Field
            label="New password"
            name="password"
            type="password"
            autocomplete="new-password"
            hint="(at least 12 characters)"
            value={password}
            form={form}
            required
          />
          <div class="actions">
            <Submit state={form}>Set the password</Submit>
          </div>
        </Form>
      ) : (
        <Form
          state={form}
          label="Reset your password"
          onSubmit={async () => {
            await api('POST', '/api/v1/auth/password-reset', { email: email.value.trim() });
            done.value = 'If an account uses that address, a link to reset its password is on its way.';
          }}
        >
          <Field
            label="Email"
            name="email"
            type="email"
            autocomplete="email"
            value={email}
            form={form}
            required
          />
          <div class="actions">
            <Submit state={form}>Send the link</Submit>
          </div>
        </Form>
      )}
    </main>
  );
}

export function VerifyEmail() {
  const token = param('token') ?? '';
  const form = useForm();
  const done = useSignal(false);
  return (
    <main id="main" class="narrow">
      <Title>Confirm your address</Title>
      {done.value ? (
        <Notice>
          Thank you: your address is confirmed. <a href="/app/sign-in">Sign in</a>
        </Notice>
      ) : (
        <Form
          state={form}
          label="Confirm your address"
          onSubmit={async () => {
            await api('POST', '/api/v1/auth/verify-email', { token });
            done.value = true;
          }}
        >
          <div class="actions">
            <Submit state={form}>Confirm my address</Submit>
          </div>
        </Form>
      )}
    </main>
  );
}
