/**
 * Makes sure the browser tests can find Debian's chromium: found → nothing to do; missing and
 * running as root with apt-get → installs it; otherwise stops with the exact command to run.
 * Run by `npm test` before the tests.
 */
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-headless-shell', '/usr/bin/chromium-browser'];
const found = () =>
  (process.env.CHROMIUM_PATH && existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null) ??
  CANDIDATES.find((p) => existsSync(p));

if (!found()) {
  const root = process.getuid?.() === 0;
  const apt = existsSync('/usr/bin/apt-get');
  if (root && apt) {
    console.log('chromium is missing: installing it with apt-get (about 30 s, ~480 MB)…');
    const update = Bun.spawnSync(['apt-get', 'update'], { stdout: 'inherit', stderr: 'inherit' });
    const install = Bun.spawnSync(['apt-get', 'install', '-y', '--no-install-recommends', 'chromium'], {
      stdout: 'inherit',
      stderr: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (update.exitCode !== 0 || install.exitCode !== 0 || !found()) {
      console.error('installing chromium failed: run `sudo apt-get install -y chromium` and try again');
      process.exit(1);
    }
  } else {
    console.error(
      'The browser tests need chromium. Install it with:\n\n  sudo apt-get install -y chromium\n\n' +
        '(or set CHROMIUM_PATH to a chromium binary) and run `npm test` again.',
    );
    process.exit(1);
  }
}
