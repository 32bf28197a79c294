import { ownPrefix, path, pick } from '../shared/router.ts';
import { bootData, Dialogs, Title } from '../shared/ui.tsx';

/** What the server tells the console (src/server/web-shell.ts). */
export interface ConsoleBoot {
  app: 'console';
}

export const boot = bootData<ConsoleBoot>();
ownPrefix('/');

function NotFound() {
  return (
    <main id="main" class="narrow">
      <Title>Page not found</Title>
      <p>
        There is nothing at this address. <a href="/">Go to the console</a>.
      </p>
    </main>
  );
}

function Home() {
  return (
    <main id="main" class="narrow">
      <Title>Soulfra console</Title>
    </main>
  );
}

const ROUTES: [string, () => preact.JSX.Element][] = [['/', Home]];

export function App() {
  const hit = pick(ROUTES, path.value);
  const Screen = hit?.route ?? NotFound;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Screen />
      <Dialogs />
    </>
  );
}
