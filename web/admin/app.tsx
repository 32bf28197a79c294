import { useEffect } from 'preact/hooks';
import { isAdmin, loadMe, me, signOut } from '../shared/platform-session.ts';
import { ownPrefix, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, Loading, NavLink, Notice, Title } from '../shared/ui.tsx';
import { ApiKeys, Audit, Sso } from './access.tsx';
import { Branding, Features } from './brand.tsx';
import { Catalog } from './catalog.tsx';
import { Invoices } from './invoices.tsx';
import { Moderation } from './moderation.tsx';
import { Overview } from './overview.tsx';
import { Invitations, Security, Users } from './people.tsx';
import { Referrals } from './referrals.tsx';
import { RevenuePage } from './revenue.tsx';
import { ToolHosts } from './tools.tsx';
import { Usage } from './usage.tsx';

/** What the server tells the admin about its platform (src/server/web-shell.ts). */
export interface AdminBoot {
  app: 'admin';
  platform: {
    name: string;
    slug: string;
    logo: string | null;
    white_label: boolean;
    features: Record<string, boolean>;
  };
}

export const boot = bootData<AdminBoot>();
// Who is signed in is asked at once, while the first screen renders.
if (me.value === undefined) void loadMe().catch(() => undefined);
ownPrefix('/admin');

function NotFound() {
  return (
    <>
      <Title>Page not found</Title>
      <p>
        There is nothing at this address. <a href="/admin">Go to the start</a>.
      </p>
    </>
  );
}

const ROUTES: [string, () => preact.JSX.Element][] = [
  ['/admin', Overview],
  ['/admin/branding', Branding],
  ['/admin/features', Features],
  ['/admin/users', Users],
  ['/admin/invitations', Invitations],
  ['/admin/security', Security],
  ['/admin/sso', Sso],
  ['/admin/api-keys', ApiKeys],
  ['/admin/usage', Usage],
  ['/admin/revenue', RevenuePage],
  ['/admin/audit', Audit],
  ['/admin/moderation', Moderation],
  ['/admin/tool-hosts', ToolHosts],
  ['/admin/catalog', Catalog],
  ['/admin/referrals', Referrals],
  ['/admin/invoices', Invoices],
];

function Shell({ children }: { children: preact.ComponentChildren }) {
  const p = boot.platform;
  return (
    <>
      <header class="topbar">
        <a class="brand" href="/admin">
          {p.logo ? <img src={p.logo} alt="" /> : null}
          <span>{p.name} admin</span>
        </a>
        <span class="spacer" />
        <a href="/app" data-reload="">
          Back to the app
        </a>
        <button
          type="button"
          onClick={async () => {
            await signOut();
            location.assign('/app/sign-in');
          }}
        >
          Sign out
        </button>
      </header>
      <div class="layout">
        <nav class="sidenav" aria-label="Admin">
          <NavLink href="/admin" exact>
            Overview
          </NavLink>
          <NavLink href="/admin/branding">Branding</NavLink>
          <NavLink href="/admin/features">Features</NavLink>
          <NavLink href="/admin/users">Users</NavLink>
          <NavLink href="/admin/invitations">Invitations</NavLink>
          <NavLink href="/admin/security">Security</NavLink>
          <NavLink href="/admin/sso">Single sign-on</NavLink>
          <NavLink href="/admin/api-keys">API keys</NavLink>
          <NavLink href="/admin/usage">AI usage</NavLink>
          <NavLink href="/admin/revenue">Revenue</NavLink>
          <NavLink href="/admin/invoices">Invoices</NavLink>
          {p.features.agent_marketplace ? <NavLink href="/admin/moderation">Moderation</NavLink> : null}
          <NavLink href="/admin/tool-hosts">Agent tools</NavLink>
          {p.features.agent_marketplace ? <NavLink href="/admin/catalog">Catalog</NavLink> : null}
          {p.features.viral_sharing ? <NavLink href="/admin/referrals">Referrals</NavLink> : null}
          <NavLink href="/admin/audit">Audit</NavLink>
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
  // Signed out: the portal's sign-in, which comes back here after.
  useEffect(() => {
    if (me.value === null) location.replace(`/app/sign-in?next=${encodeURIComponent(p + location.search)}`);
  }, [me.value, p]);
  let body: preact.JSX.Element;
  if (!me.value)
    body = (
      <main id="main" class="narrow">
        <Loading />
      </main>
    );
  else if (!isAdmin(me.value))
    body = (
      <main id="main" class="narrow">
        <Title>You need an admin role</Title>
        <Notice kind="warn">
          The admin is for the platform's owners and admins; you are signed in as a {me.value.role}.
        </Notice>
        <p>
          <a href="/app" data-reload="">
            Go to the app
          </a>
        </p>
      </main>
    );
  else {
    const Screen = pick(ROUTES, p)?.route ?? NotFound;
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
      {boot.platform.white_label ? null : <footer class="footer">Powered by Soulfra</footer>}
      <Dialogs />
    </>
  );
}
