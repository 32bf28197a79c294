import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type ApiScenario, runScenario } from './scenario.ts';

// The scenario runner itself: each check it offers fails when the answer differs.
let s: InProcessServer;
beforeAll(async () => {
  s = await inProcessServer();
});
afterAll(() => s.close());

const op = () => ({ authorization: `Bearer ${s.operator.token}` });
const create = (slug: string): Omit<ApiScenario, 'expectedStatus'> => ({
  name: `create ${slug}`,
  method: 'POST',
  url: '/_operator/api/platforms',
  headers: op,
  body: { slug },
});

describe('scenario runner', () => {
  test('passes when every expectation holds', async () => {
    await runScenario(s, {
      ...create('runner-ok'),
      expectedStatus: 201,
      expectedContent: ['runner-ok'],
      notExpectedContent: ['"error"'],
      expectedEvents: ['platform.created'],
      expectedAudit: ['platform.created', 'runner-ok:platform.created'],
    });
  });

  const failing: [string, Partial<ApiScenario>][] = [
    ['a wrong status', { expectedStatus: 200 }],
    ['a missing substring', { expectedContent: ['no such text'] }],
    ['a predicate returning false', { expectedContent: () => false }],
    ['a forbidden substring', { notExpectedContent: ['"slug"'] }],
    ['an unexpected event', { expectedEvents: [] }],
    ['an unexpected audit entry', { expectedAudit: ['platform.created'] }],
  ];
  for (const [i, [what, override]] of failing.entries()) {
    test(`fails on ${what}`, async () => {
      const slug = `runner-f${i}`;
      const sc: ApiScenario = {
        ...create(slug),
        expectedStatus: 201,
        expectedEvents: ['platform.created'],
        expectedAudit: ['platform.created', `${slug}:platform.created`],
        ...override,
      };
      await expect(runScenario(s, sc)).rejects.toThrow();
      // The request itself ran: the platform exists whatever the verdict.
      expect(s.tenancy.registry.bySlug(slug)).toBeDefined();
    });
  }

  test('the pinned clock is the one the server uses', async () => {
    const at = s.clock.now() + 3_600_000;
    s.clock.set(at);
    await runScenario(s, {
      ...create('runner-clock'),
      expectedStatus: 201,
      expectedEvents: ['platform.created'],
      expectedAudit: ['platform.created', 'runner-clock:platform.created'],
    });
    const row = s.app.control
      .query<{ created_at: number }, [string]>('SELECT created_at FROM platforms WHERE slug = ?')
      .get('runner-clock');
    expect(row?.created_at).toBe(at);
  });
});
