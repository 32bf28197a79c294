import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { setCsrf } from '../shared/api.ts';
import { navigate, ownPrefix, param, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, Field, Form, Loading, NavLink, Submit, Title, useForm } from '../shared/ui.tsx';
import { FeeIncome } from './fees.tsx';
import { Account, Audit, Health, Operators, Tokens } from './ops.tsx';
import { Plans } from './plans.tsx';
import { NewPlatform, PlatformDetail, Platforms } from './platforms.tsx';
import { loadOperator, op, operator, signOutOperator } from './session.ts';

/** What the server tells the console (src/server/web-shell.ts). */
export interface ConsoleBoot {
  app: 'console';
  /** Whether the console's OIDC single sign-on is set up. */
  sso?: boolean;
}

export const boot = bootData<ConsoleBoot>();
ownPrefix('/');
// Who is signed in is asked at once, while the first screen renders.
if (operator.value === undefined) void loadOperator().catch(() => undefined);

function NotFound() {
  return (
    <>
      <Title>Page not found</Title>
      <p>
        There is nothing at this address. <a href="/platforms">Go to the platforms</a>.
      </p>
    </>
  );
}

/** After sign-in: where the operator was going, if it is a console page. */
function nextPage(): string {
  const n = param('next');
  return n?.startsWith('/') && !n.startsWith('//') && !n.startsWith('/sign-in') ? n : '/platforms';
}

function SignIn() {
  const email = useSignal('');
  const password = useSignal('');
  const code = useSignal('');
  const step = useSignal<'password' | 'mfa'>('password');
  const form = useForm();
  // Signed in: the App sends the operator on (to ?next= or the platforms).
  const done = async () => {
    await loadOperator();
  };
  return (
    <main id="main" class="narrow">
      <Title>Sign in to the console</Title>
      {step.value === 'password' ? (
        <Form
          state={form}
          label="Sign in"
          onSubmit={async () => {
            const r = await op<{ mfa_required: boolean; csrf_token: string }>('POST', '/sign-in', {
              email: email.value.trim(),
              password: password.value,
            });
            setCsrf(r.csrf_token);
            if (r.mfa_required) step.value = 'mfa';
            else await done();
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
            await op('POST', '/sign-in/mfa', { code: code.value.replace(/\s+/g, '') });
            await done();
          }}
        >
          <p>Enter the 6-digit code from your authenticator app.</p>
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
      {boot.sso ? (
        <p>
          <a
            class="button"
            href={`/sso/oidc/login?return_to=${encodeURIComponent(nextPage())}`}
            data-reload=""
          >
            Sign in with SSO
          </a>
        </p>
      ) : null}
    </main>
  );
}

const ROUTES: [string, () => preact.JSX.Element][] = [
  ['/platforms', Platforms],
  ['/platforms/:slug', PlatformDetail],
  ['/new', NewPlatform],
  ['/plans', Plans],
  ['/operators', Operators],
  ['/tokens', Tokens],
  ['/health', Health],
  ['/billing', FeeIncome],
  ['/audit', Audit],
  ['/account', Account],
];

function Shell({ children }: { children: preact.ComponentChildren }) {
  const o = operator.value!;
  return (
    <>
      <header class="topbar">
        <a class="brand" href="/platforms">
          <span>Soulfra console</span>
        </a>
        <span class="spacer" />
        <a href="/account">{o.actor.replace(/^operator:/, '')}</a>
        <button
          type="button"
          onClick={async () => {
            await signOutOperator();
            navigate('/sign-in');
          }}
        >
          Sign out
        </button>
      </header>
      <div class="layout">
        <nav class="sidenav" aria-label="Console">
          <NavLink href="/platforms">Platforms</NavLink>
          <NavLink href="/plans">Plans</NavLink>
          <NavLink href="/operators">Operators</NavLink>
          <NavLink href="/tokens">Tokens</NavLink>
          <NavLink href="/billing">Fee income</NavLink>
          <NavLink href="/health">Health</NavLink>
          <NavLink href="/audit">Audit</NavLink>
        </nav>
        <main id="main" class="content">
          {children}
        </main>
      </div>
    </>
  );
}

export function App() {
  const p = path.value;
  const signIn = p === '/sign-in';
  // Signed out: every screen but sign-in sends there and comes back after.
  // (Effects run after a paint: they read where the page is now, not where it was rendered.)
  useEffect(() => {
    const here = location.pathname;
    if (here !== '/sign-in' && operator.value === null)
      navigate(
        here === '/' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(here + location.search)}`,
        true,
      );
    if (here === '/' && operator.value) navigate('/platforms', true);
    if (here === '/sign-in' && operator.value) navigate(nextPage(), true);
  }, [signIn, operator.value, p]);
  let body: preact.JSX.Element;
  if (signIn && !operator.value) body = <SignIn />;
  else if (!operator.value || p === '/' || signIn)
    body = (
      <main id="main" class="narrow">
        <Loading />
      </main>
    );
  else {
    const hit = pick(ROUTES, p);
    const Screen = hit?.route ?? NotFound;
    body = (
      <Shell>
        <Screen />
      </Shell>
    );
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      {body}
      <Dialogs />
    </>
  );
}
