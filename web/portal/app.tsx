import { ownPrefix, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, Title } from '../shared/ui.tsx';

/** What the server tells the portal about its platform (src/server/web-shell.ts). */
export interface PortalBoot {
  app: 'portal';
  platform: { name: string; slug: string; logo: string | null; white_label: boolean };
}

export const boot = bootData<PortalBoot>();
ownPrefix('/app');

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

function Home() {
  return (
    <main id="main" class="narrow">
      <Title>{boot.platform.name}</Title>
      <p>Welcome.</p>
    </main>
  );
}

const ROUTES: [string, () => preact.JSX.Element][] = [['/app', Home]];

export function App() {
  const hit = pick(ROUTES, path.value);
  const Screen = hit?.route ?? NotFound;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Screen />
      {boot.platform.white_label ? null : <footer class="footer">Powered by Soulfra</footer>}
      <Dialogs />
    </>
  );
}
