import { useEffect } from 'preact/hooks';
import { isAdmin, loadMe, me, signOut } from '../shared/platform-session.ts';
import { navigate, ownPrefix, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, ErrorNotice, Loading, Title } from '../shared/ui.tsx';
import { AgentBuilder, Agents } from './agents.tsx';
import { AcceptInvite, ResetPassword, SignIn, SignUp, VerifyEmail } from './auth.tsx';
import { BillingPage } from './billing.tsx';
import { Chat } from './chat.tsx';
import { ImportAgent } from './federation.tsx';
import { CommunityQueue, ListingPage, Marketplace } from './marketplace.tsx';
import { PricingPage } from './pricing.tsx';
import { Profile } from './profile.tsx';
import { CreatorPage, captureReferral } from './sharing.tsx';

/** What the server tells the portal about its platform (src/server/web-shell.ts). */
export interface PortalBoot {
  app: 'portal';
  /** What sign-in offers on this platform. */
  sign_in: { password: boolean; oidc: boolean; saml: boolean };
  platform: {
    name: string;
    slug: string;
    logo: string | null;
    white_label: boolean;
    features: Record<string, boolean>;
    plans?: boolean;
  };
}

export const boot = bootData<PortalBoot>();
// Who is signed in is asked at once, while the first screen renders.
if (me.value === undefined) void loadMe().catch(() => undefined);
ownPrefix('/app');
// A share link's referral code is remembered and its visit counted (sharing.tsx).
captureReferral();

function NotFound() {
  return (
    <main id="main" class="narrow">
      <Title>Page not found</Title>
      <p>
        There is nothing at this address. <a href="/app">Go to the start</a>.
      </p>
    </main>
  );
}

/** Screens for anyone, and screens that need a signed-in user. */
const PUBLIC: [string, () => preact.JSX.Element][] = [
  ['/app/sign-in', SignIn],
  ['/app/sign-up', SignUp],
  ['/app/accept-invite', AcceptInvite],
  ['/app/reset-password', ResetPassword],
  ['/app/verify-email', VerifyEmail],
];
const PRIVATE: [string, () => preact.JSX.Element][] = [
  ['/app', Chat],
  ['/app/c/:id', Chat],
  ['/app/profile', Profile],
  ['/app/agents', Agents],
  ['/app/agents/import', ImportAgent],
  ['/app/agents/:id', AgentBuilder],
  ['/app/marketplace', Marketplace],
  ['/app/marketplace/community', CommunityQueue],
  ['/app/marketplace/:id', ListingPage],
  ['/app/creator', CreatorPage],
  ['/app/billing', BillingPage],
  ['/app/pricing', PricingPage],
];

function TopBar() {
  const m = me.value;
  const p = boot.platform;
  return (
    <header class="topbar">
      <a class="brand" href={m ? '/app' : '/'} data-reload={m ? undefined : ''}>
        {p.logo ? <img src={p.logo} alt="" /> : null}
        <span>{p.name}</span>
      </a>
      <span class="spacer" />
      {m ? (
        <>
          {isAdmin(m) ? (
            <a href="/admin" data-reload="">
              Admin
            </a>
          ) : null}
          <a href="/app/agents">Agents</a>
          {p.features.agent_marketplace ? <a href="/app/marketplace">Marketplace</a> : null}
          {m.permissions.includes('agents:write') ? <a href="/app/creator">Creator</a> : null}
          {p.plans ? <a href="/app/pricing">Plans</a> : null}
          {p.features.agent_marketplace || p.plans ? <a href="/app/billing">Billing</a> : null}
          <a href="/app/profile">Profile</a>
          <button
            type="button"
            onClick={async () => {
              await signOut();
              navigate('/app/sign-in');
            }}
          >
            Sign out
          </button>
        </>
      ) : null}
    </header>
  );
}

export function App() {
  const p = path.value;
  const open = pick(PUBLIC, p);
  const closed = open ? null : pick(PRIVATE, p);
  // Signed-out visitors of a private screen go to sign-in, and come back after.
  useEffect(() => {
    if (closed && me.value === null)
      navigate(`/app/sign-in?next=${encodeURIComponent(p + location.search)}`, true);
  }, [closed, me.value, p]);
  let body: preact.JSX.Element;
  if (open) body = <open.route />;
  else if (!closed) body = <NotFound />;
  else if (me.value === undefined || me.value === null)
    body = (
      <main id="main" class="narrow">
        <Loading />
      </main>
    );
  else body = <closed.route />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <TopBar />
      {body}
      {boot.platform.white_label ? null : <footer class="footer">Powered by Soulfra</footer>}
      <Dialogs />
    </>
  );
}

export { ErrorNotice };
