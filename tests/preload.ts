/**
 * Loaded before every test file (bunfig.toml `[test] preload`). Passwords are hashed at the
 * cheap test cost (src/identity/accounts/passwords.ts `TEST_FAST_HASH_ENV`): argon2id at its production
 * cost was most of the suite's CPU (identity, linking and API-key files: 20.6 s of CPU, 4.1 s
 * with it). Child processes the tests spawn (the CLI, `serve`) inherit it with NODE_ENV=test.
 * The production cost keeps its own test (passwords.test.ts). `SOULFRA_TEST_FAST_HASH=0 bun
 * test` runs the suite at the production cost.
 */
process.env.SOULFRA_TEST_FAST_HASH ??= '1';

// The browser apps' build (web/dist) is what the server serves at /app, /admin and the console:
// made here when web/ changed since the last one, so no test sees a stale build.
import { buildWeb, isStale } from '../scripts/build-web.ts';

if (isStale()) await buildWeb({ quiet: true });
