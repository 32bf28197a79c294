import { expect, test } from 'bun:test';
import { createPlatform } from '../src/flows/index.ts';
import { startTestServer } from './helpers.ts';
import { inProcessServer } from './inproc.ts';
import { waitFor } from './wait.ts';

test('the in-process server runs the wiring of serve (buildServerApp): the same components, in the same order, minus the listeners and the lock', async () => {
  const real = await startTestServer();
  const inproc = await inProcessServer();
  try {
    const serveOnly = new Set([
      'data-dir lock',
      'AI health loop',
      'first-run setup',
      'TCP listener',
      'control socket',
      'drain',
    ]);
    const shared = real.lifecycle.names.filter((n) => !serveOnly.has(n));
    expect(shared).toEqual(['instance', 'events dispatcher', 'AI runtime', 'meter', 'mailer']);
    expect(inproc.lifecycle.names).toEqual(shared);
    // Its event dispatcher is the started one: an event appended through a request is delivered.
    const seen: string[] = [];
    inproc.app.events.subscribe('test.inproc', (e) => {
      if (e.name === 'platform.created') seen.push(e.payload.slug);
    });
    expect((await inproc.operatorApi('POST', '/platforms', { slug: 'wired' })).status).toBe(201);
    await waitFor(() => seen.includes('wired'), { what: 'platform.created delivered' });
  } finally {
    await inproc.close();
    await real.cleanup();
  }
});

test('a subscriber that never settles stalls neither delivery to the others nor the server stop (found by review)', async () => {
  const s = await startTestServer();
  let stuck: AbortSignal | null = null;
  const others: string[] = [];
  s.app.events.subscribe('test.stuck', (e, { signal }) => {
    if (e.name !== 'platform.created') return;
    stuck = signal;
    return new Promise<void>(() => {});
  });
  s.app.events.subscribe('test.other', (e) => {
    if (e.name === 'platform.created') others.push(e.payload.slug);
  });
  try {
    await createPlatform(s.app, s.tenancy, { slug: 'stuck' }, 'test');
    await waitFor(() => stuck !== null && others.includes('stuck'), { what: 'both subscribers called' });
    // stop() returns: the dispatcher abandons the handler after its grace (2 s), inside the
    // component's stop timeout, so no component failed or timed out.
    await s.stop();
    expect(await s.lifecycle.stop()).toEqual([]);
    expect(stuck!.aborted).toBe(true);
  } finally {
    await s.cleanup();
  }
}, 20_000);
