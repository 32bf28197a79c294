/**
 * A conversation's event stream never finishes on its own: a stopping server ends it first, so
 * the graceful stop does not wait out `shutdown_timeout_ms` (30 s here, past this test's own
 * timeout) for an open portal tab; the client's stream ends cleanly (EventSource reconnects).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { hostFetch, operatorApi, startTestServer } from './helpers.ts';
import { type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';

let s: Awaited<ReturnType<typeof startTestServer>>;
let stub: OpenAIStub;
let stopped = false;

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      shutdown_timeout_ms: 30_000,
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
    },
  });
});
afterAll(async () => {
  if (!stopped) await s.cleanup();
  await stub.stop();
});

test('stopping the server ends open conversation event streams cleanly', async () => {
  const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'dr',
    template: 'creator',
    blueprint: { features: { collaborative_agents: true } },
  });
  expect(r.status).toBe(201);
  const { admin } = (await r.json()) as { admin: { email: string; password: string } };
  const host = 'dr.localhost';
  const login = await hostFetch(s.base, host, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(admin),
  });
  expect(login.status).toBe(200);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const { csrf_token } = (await login.json()) as { csrf_token: string };
  // A conversation of the owner's own (its events are the owner's too).
  const c = await hostFetch(s.base, host, '/api/v1/conversations', {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf_token, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(c.status).toBe(201);
  const id = ((await c.json()) as { conversation: { id: string } }).conversation.id;
  const ev = await hostFetch(s.base, host, `/api/v1/conversations/${id}/events`, { headers: { cookie } });
  expect(ev.status).toBe(200);
  const reader = ev.body!.pipeThrough(new TextDecoderStream()).getReader();
  expect((await reader.read()).value).toContain('event: ready');
  stopped = true;
  await s.cleanup();
  // The stream ended (done), not cut by a forced close after the timeout.
  let end = await reader.read();
  while (!end.done) end = await reader.read();
  expect(end.done).toBe(true);
}, 20_000);
