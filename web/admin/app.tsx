import { ownPrefix, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, Title } from '../shared/ui.tsx';

/** What the server tells the admin about its platform (src/server/web-shell.ts). */
export interface AdminBoot {
  app: 'admin';
  platform: { name: string; slug: string; logo: string | null; white_label: boolean };
}

export const boot = bootData<AdminBoot>();
ownPrefix('/admin');

function NotFound() {
  return (
    <main id="main" class="narrow">
      <Title>Page not found</Title>
      <p>
        There is nothing at this address. <a href="/admin">Go to the start</a>.
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

const ROUTES: [string, () => preact.JSX.Element][] = [['/admin', Home]];

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
