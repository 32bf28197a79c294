/**
 * Sharing, referrals and the creator's view (issue 12 items 1, 5, 6 and 9): the migration that
 * widens agents' visibility, link visibility (the link's holder may use the agent, others get
 * 404, a rotated or revoked token ends it), share links from the stored public URL, referral
 * visits as a bounded counter, sign-up and install attribution (self-referral ignored), the
 * feature switch, usage rows attributed to the agent's version and creator, and the creator's
 * figures checked against a scenario built here.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { migrate } from '../db/migrate.ts';
import { TENANT_MIGRATIONS } from '../db/migrations.ts';
import { openDatabase } from '../db/open.ts';
import { rotateDataKey } from '../flows/keys.ts';
import { LOCAL_ROOT } from '../identity/index.ts';
import { referralCodeOf } from '../identity/referrals/referrals.ts';
import { domainUrl } from '../tenancy/settings.ts';
import { VISITS_PER_MINUTE } from './sharing.service.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const S: Record<string, Session> = {};
const P: Record<string, { id: string; owner: { email: string; password: string } }> = {};
const PW = 'a-long-password-12';

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const code = async (r: Response | Promise<Response>) =>
  ((await (await r).json()) as { error: { code: string } }).error.code;
const inDb = <T>(slug: string, f: (db: Database) => T): Promise<T> =>
  Promise.resolve(s.app.platformDbs.use(P[slug]!.id, f));
/** An anonymous JSON request to a platform. */
const anon = (
  slug: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) =>
  s.request(`${slug}.localhost`, path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function turn(se: Session, conversationId: string, content = 'hello') {
  const r = await call(se, 'POST', `/api/v1/conversations/${conversationId}/messages`, { content });
  expect(r.status).toBe(200);
  const text = await r.text();
  expect(text).toContain('event: done');
}
async function startChat(se: Session, agentId: string, draft = false): Promise<string> {
  const r = await call(se, 'POST', '/api/v1/conversations', {
    agent_id: agentId,
    ...(draft ? { draft } : {}),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { conversation: { id: string } }).conversation.id;
}
async function newAgent(se: Session, body: Record<string, unknown>): Promise<string> {
  const r = await call(se, 'POST', '/api/v1/agents', body);
  expect(r.status).toBe(201);
  return ((await r.json()) as { agent: { id: string } }).agent.id;
}
const publish = async (se: Session, id: string) =>
  expect((await call(se, 'POST', `/api/v1/agents/${id}/publish`)).status).toBe(201);

/** Signs everyone in again (after the clock moved past their sessions' lifetime). */
async function signInAll() {
  S.owner = await signInTo(s, 'sh', P.sh!.owner.email, P.sh!.owner.password);
  for (const name of ['cat', 'dan', 'ann', 'bob']) S[name] = await signInTo(s, 'sh', `${name}@sh.test`, PW);
  S.offOwner = await signInTo(s, 'off', P.off!.owner.email, P.off!.owner.password);
  S.otherOwner = await signInTo(s, 'other', P.other!.owner.email, P.other!.owner.password);
}

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      outbound: { allow: ['127.0.0.1/32'] },
      // One token costs `price` micro-units: 1,000 in, 2,000 out.
      prices: { 'stub/gpt-4o-mini': { input: 1000, output: 2000, currency: 'usd' } },
    },
  });
  const open = { governance: { user_verification: { email_required: false, age_verification: false } } };
  for (const [slug, blueprint] of [
    ['sh', open],
    ['off', { ...open, features: { viral_sharing: false } }],
    ['other', open],
    ['pend', {}], // the creator template: sign-ups confirm their email first
  ] as const) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator', blueprint });
    expect(r.status).toBe(201);
    const b = (await r.json()) as { admin: { email: string; password: string }; platform: { id: string } };
    P[slug] = { id: b.platform.id, owner: b.admin };
  }
  S.owner = await signInTo(s, 'sh', P.sh!.owner.email, P.sh!.owner.password);
  for (const [name, role] of [
    ['cat', 'creator'],
    ['dan', 'creator'],
    ['ann', 'member'],
    ['bob', 'member'],
  ] as const) {
    const r = await call(S.owner, 'POST', '/api/v1/users', { email: `${name}@sh.test`, role, password: PW });
    expect(r.status).toBe(201);
  }
  await signInAll();
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

describe('migration 0019', () => {
  test('rebuilds agents (link visibility) keeping rows, foreign keys, cascades and indexes', () => {
    const t = tempDir();
    try {
      const db = openDatabase(join(t.dir, 'p.db'), 'tenant');
      migrate(db, TENANT_MIGRATIONS.slice(0, 18), 'old');
      db.exec(`
        INSERT INTO users (id, email, name, password_hash, role, status, created_at, updated_at)
          VALUES ('usr_1', 'a@x.test', 'A', 'x', 'creator', 'active', 1, 1);
        INSERT INTO users (id, email, name, password_hash, role, status, created_at, updated_at)
          VALUES ('usr_2', 'b@x.test', 'B', 'x', 'creator', 'active', 1, 1);
        INSERT INTO agents (id, slug, owner_id, visibility, draft, latest_version, created_at, updated_at, forked_from, imported_from)
          VALUES ('agt_1', 'one', 'usr_1', 'platform', '{}', 1, 1, 2, '{"listing":"l"}', '{"key":"k"}');
        INSERT INTO agent_members VALUES ('agt_1', 'usr_2', 'viewer', 'user:usr_1', 1, 1);
        INSERT INTO agent_versions VALUES ('agt_1', 1, 'h', '{}', 'user:usr_1', 1);
        INSERT INTO listings (id, agent_id, version, title, summary, category, tags, price_model, status, created_by, created_at, updated_at)
          VALUES ('lst_1', 'agt_1', 1, 'One', 'S', 'general', '[]', 'free', 'published', 'x', 1, 1);
        INSERT INTO listing_installs VALUES ('lst_1', 'usr_1', 1, 5);
        INSERT INTO conversations (id, user_id, title, model, created_at, updated_at, agent_id, agent_version)
          VALUES ('cnv_1', 'usr_1', 'T', 'default', 1, 1, 'agt_1', 1);
        INSERT INTO knowledge_docs VALUES ('kdc_1', 'agt_1', 'd', 'text/plain', 1, 0, 'm', 'x', 1);
      `);
      const r = migrate(db, TENANT_MIGRATIONS, 'platform');
      expect(r.applied).toContain('0019-sharing');
      const one = <T>(sql: string) => db.query<T, []>(sql).get();
      expect(one('PRAGMA foreign_keys')).toEqual({ foreign_keys: 1 });
      expect(db.query('PRAGMA foreign_key_check').all()).toEqual([]);
      expect(
        one<Record<string, unknown>>(
          'SELECT id, slug, owner_id, visibility, latest_version, forked_from, imported_from, share_token FROM agents',
        ),
      ).toEqual({
        id: 'agt_1',
        slug: 'one',
        owner_id: 'usr_1',
        visibility: 'platform',
        latest_version: 1,
        forked_from: '{"listing":"l"}',
        imported_from: '{"key":"k"}',
        share_token: null,
      });
      // The rows that reference agents are all still there (no cascade ran).
      for (const table of [
        'agent_versions',
        'listings',
        'listing_installs',
        'knowledge_docs',
        'agent_members',
      ])
        expect(one<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)).toEqual({ n: 1 });
      expect(one('SELECT agent_id FROM conversations')).toEqual({ agent_id: 'agt_1' });
      expect(one("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'agents_by_owner'")).toEqual(
        {
          name: 'agents_by_owner',
        },
      );
      // The new CHECK takes link and still refuses the unknown; foreign keys still bite and cascade.
      db.exec("UPDATE agents SET visibility = 'link'");
      expect(() => db.exec("UPDATE agents SET visibility = 'public'")).toThrow(/CHECK/);
      expect(() => db.exec("INSERT INTO agent_versions VALUES ('agt_nope', 1, 'h', '{}', 'x', 1)")).toThrow(
        /FOREIGN KEY/,
      );
      db.exec("DELETE FROM agents WHERE id = 'agt_1'");
      expect(one('SELECT count(*) AS n FROM agent_versions')).toEqual({ n: 0 });
      expect(one('SELECT agent_id FROM conversations')).toEqual({ agent_id: null });
      db.close();
    } finally {
      t.cleanup();
    }
  });
});

describe("the creator's queries use their indexes", () => {
  test('no full scan of usage_events, conversations, installs or reviews', () => {
    const db = openDatabase(':memory:', 'tenant');
    migrate(db, TENANT_MIGRATIONS, 'plans');
    const plan = (sql: string) =>
      db
        .query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => r.detail)
        .join('\n');
    const usage = plan(
      "SELECT agent_id, agent_version, count(*) FROM usage_events WHERE creator_id = 'u' GROUP BY agent_id, agent_version",
    );
    expect(usage).toContain('usage_events_by_creator');
    const convs = plan(
      "SELECT c.agent_id, c.agent_version, count(*) FROM agents a JOIN conversations c ON c.agent_id = a.id WHERE a.owner_id = 'u' GROUP BY c.agent_id, c.agent_version",
    );
    expect(convs).toContain('agents_by_owner');
    expect(convs).toContain('conversations_by_agent');
    expect(convs).not.toContain('SCAN');
    const installs = plan(
      "SELECT l.agent_id, i.version, count(*) FROM agents a JOIN listings l ON l.agent_id = a.id JOIN listing_installs i ON i.listing_id = l.id WHERE a.owner_id = 'u' GROUP BY l.agent_id, i.version",
    );
    expect(installs).toContain('SEARCH a USING INDEX agents_by_owner');
    expect(installs).toContain('SEARCH i USING INDEX');
    expect(installs).not.toContain('SCAN');
    const referred = plan(
      "SELECT count(*) FROM listing_installs WHERE referrer_id = 'u' AND installed_at >= 0",
    );
    expect(referred).toContain('listing_installs_by_referrer');
    db.close();
  });
});

let linkAgent = '';

describe('link visibility', () => {
  test("the link's holder may use a published link agent; others 404; not listed; rotate and revoke end it", async () => {
    linkAgent = await newAgent(S.cat!, {
      name: 'Secret Helper',
      persona: 'link persona',
      visibility: 'link',
    });
    // Before it is published a link opens nothing.
    const first = await json<{ link: { token: string; url: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${linkAgent}/link`),
    );
    expect(
      await code(call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: first.link.token })),
    ).toBe('agent.not_found');
    await publish(S.cat!, linkAgent);
    // Its URL is built on the platform's stored public URL, with the token.
    const u = new URL(first.link.url);
    expect(u.origin).toBe(new URL(domainUrl(s.tenancy.settings(), 'sh.localhost')).origin);
    expect(u.pathname).toBe(`/app/agents/${linkAgent}`);
    expect(u.searchParams.get('share')).toBe(first.link.token);
    // Others: not found, not listed; a wrong token is not found either.
    expect(await code(call(S.ann!, 'GET', `/api/v1/agents/${linkAgent}`))).toBe('agent.not_found');
    expect(
      await code(
        call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: `${first.link.token}x` }),
      ),
    ).toBe('agent.not_found');
    expect(await code(call(S.ann!, 'POST', '/api/v1/conversations', { agent_id: linkAgent }))).toBe(
      'agent.not_found',
    );
    // Ann opens the link: she may read and chat with it; Bob still may not; nobody sees it listed.
    const opened = await call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, {
      token: first.link.token,
    });
    expect(opened.status).toBe(200);
    expect((await call(S.ann!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(200);
    const conv = await startChat(S.ann!, linkAgent);
    await turn(S.ann!, conv);
    const sent = stub.requests.at(-1)!.body as { messages: { role: string; content: string }[] };
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'link persona' });
    expect((await call(S.bob!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(404);
    for (const who of [S.ann!, S.bob!]) {
      const list = await json<{ agents: { id: string }[] }>(call(who, 'GET', '/api/v1/agents'));
      expect(list.agents.map((a) => a.id)).not.toContain(linkAgent);
    }
    // Only its editors rotate or revoke (Ann, who holds the link, may not).
    expect((await call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link`)).status).toBe(403);
    expect(await code(call(S.dan!, 'DELETE', `/api/v1/agents/${linkAgent}/link`))).toBe('agent.not_found');
    // Dan, a creator, opens it too: he may use it, not change its link.
    expect(
      (await call(S.dan!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: first.link.token }))
        .status,
    ).toBe(200);
    expect(await code(call(S.dan!, 'POST', `/api/v1/agents/${linkAgent}/link`))).toBe('agent.forbidden');
    // The token of another platform's agent is nothing here, and A's link is nothing on B.
    expect(
      await code(
        call(S.otherOwner!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: first.link.token }),
      ),
    ).toBe('agent.not_found');
    // Rotated: Ann's access and the old link end; the new link works.
    const second = await json<{ link: { token: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${linkAgent}/link`),
    );
    expect(second.link.token).not.toBe(first.link.token);
    expect((await call(S.ann!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(404);
    expect(
      await code(call(S.ann!, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'again' })),
    ).toBe('agent.not_found');
    expect(
      (await call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: first.link.token }))
        .status,
    ).toBe(404);
    expect(
      (await call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: second.link.token }))
        .status,
    ).toBe(200);
    expect((await call(S.ann!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(200);
    // Revoked: nobody but its editors, whatever token.
    expect((await call(S.cat!, 'DELETE', `/api/v1/agents/${linkAgent}/link`)).status).toBe(204);
    expect((await call(S.ann!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(404);
    expect(
      (await call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token: second.link.token }))
        .status,
    ).toBe(404);
    expect((await call(S.cat!, 'GET', `/api/v1/agents/${linkAgent}`)).status).toBe(200);
    // The token is sealed at rest, never stored in clear; every change is audited.
    const third = await json<{ link: { token: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${linkAgent}/link`),
    );
    const row = await inDb('sh', (db) =>
      db
        .query<{ share_token: string }, [string]>('SELECT share_token FROM agents WHERE id = ?')
        .get(linkAgent),
    );
    expect(row!.share_token.startsWith('sf1.')).toBe(true);
    expect(row!.share_token).not.toContain(third.link.token);
    const actions = await inDb('sh', (db) =>
      db
        .query<{ action: string }, [string]>(
          "SELECT action FROM audit_log WHERE target = ? AND action LIKE 'agent.link%' ORDER BY seq",
        )
        .all(`agent:${linkAgent}`)
        .map((r) => r.action),
    );
    expect(actions).toEqual([
      'agent.link_rotated',
      'agent.link_opened',
      'agent.link_opened',
      'agent.link_rotated',
      'agent.link_opened',
      'agent.link_revoked',
      'agent.link_rotated',
    ]);
  });

  test('keys rotate re-seals the share token: the same link keeps working', async () => {
    const sealed = async () =>
      (await inDb('sh', (db) =>
        db.query<{ t: string }, [string]>('SELECT share_token AS t FROM agents WHERE id = ?').get(linkAgent),
      ))!.t;
    const before = await sealed();
    const share = async () =>
      new URL(
        (await json<{ links: { agent: string } }>(call(S.cat!, 'POST', `/api/v1/agents/${linkAgent}/share`)))
          .links.agent,
      ).searchParams.get('share');
    const token = await share();
    expect(token).toBeTruthy();
    const r = await rotateDataKey(s.app, s.tenancy, LOCAL_ROOT);
    expect(r.resealed.platform_secrets).toBeGreaterThanOrEqual(1);
    const after = await sealed();
    expect(after).not.toBe(before);
    expect(after.split('.')[1]).toBe(r.data_key);
    expect(await share()).toBe(token);
    expect((await call(S.bob!, 'POST', `/api/v1/agents/${linkAgent}/link/open`, { token })).status).toBe(200);
  });
});

let agentA = '';
let listingA = '';
let catCode = '';
let bobCode = '';

describe('share links and referrals', () => {
  test('share links carry the referral code and come from the stored public URL', async () => {
    agentA = await newAgent(S.cat!, { name: 'Recipe Scout', persona: 'v1 persona', visibility: 'private' });
    await publish(S.cat!, agentA);
    const before = await json<{ code: string; links: Record<string, string | null> }>(
      call(S.cat!, 'POST', `/api/v1/agents/${agentA}/share`),
    );
    catCode = before.code;
    expect(catCode).toMatch(/^[a-km-np-z2-9]{10}$/);
    expect(before.links.listing).toBeNull();
    const l = await json<{ listing: { id: string; status: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${agentA}/listing`, { summary: 'Finds recipes.' }),
    );
    expect(l.listing.status).toBe('published');
    listingA = l.listing.id;
    // A Host header with another port changes nothing: the origin is the stored one.
    const r = await s.request('sh.localhost:9999', `/api/v1/agents/${agentA}/share`, {
      method: 'POST',
      headers: { cookie: S.cat!.cookie, 'x-csrf-token': S.cat!.csrf },
    });
    expect(r.status).toBe(200);
    const share = (await r.json()) as { code: string; links: Record<string, string> };
    const origin = new URL(domainUrl(s.tenancy.settings(), 'sh.localhost')).origin;
    expect(share.code).toBe(catCode);
    expect(share.links).toEqual({
      agent: `${origin}/app/agents/${agentA}?ref=${catCode}`,
      listing: `${origin}/app/marketplace/${listingA}?ref=${catCode}`,
      signup: `${origin}/app/sign-up?ref=${catCode}`,
    });
    // The code is one per user, stable; Bob gets his own.
    const me = await json<{ code: string; links: { signup: string } }>(
      call(S.cat!, 'GET', '/api/v1/referrals/me'),
    );
    expect(me.code).toBe(catCode);
    bobCode = (await json<{ code: string }>(call(S.bob!, 'GET', '/api/v1/referrals/me'))).code;
    expect(bobCode).not.toBe(catCode);
    // Sharing what one may not read is not found.
    expect(await code(call(S.ann!, 'POST', `/api/v1/agents/${linkAgent}/share`))).toBe('agent.not_found');
  });

  test('visits: a bounded counter per code and UTC day; unknown codes write nothing and answer the same', async () => {
    const visits = () =>
      inDb('sh', (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM referral_visits').get()!.n);
    const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
    const random = () => Array.from({ length: 10 }, () => alphabet[Math.floor(Math.random() * 32)]).join('');
    for (let i = 0; i < 1000; i++) {
      // Within the per-address limit, so each one reaches the counter.
      if (i % VISITS_PER_MINUTE === 0) s.clock.advance(60_000);
      const ref = i % 10 === 0 ? { not: 'a code' } : i % 10 === 1 ? 'x'.repeat(5000) : random();
      const r = await anon('sh', 'POST', '/api/v1/referrals/visit', { ref });
      expect(r.status).toBe(204);
    }
    expect(await visits()).toBe(0);
    // A real code's visits: counted per UTC day.
    s.clock.advance(60_000);
    for (let i = 0; i < 3; i++)
      expect((await anon('sh', 'POST', '/api/v1/referrals/visit', { ref: catCode })).status).toBe(204);
    const day1 = new Date(s.clock.now()).toISOString().slice(0, 10);
    s.clock.advance(86_400_000);
    const day2 = new Date(s.clock.now()).toISOString().slice(0, 10);
    for (let i = 0; i < 2; i++)
      expect(
        (await anon('sh', 'POST', '/api/v1/referrals/visit', { ref: catCode.toUpperCase() })).status,
      ).toBe(204);
    expect(await visits()).toBe(2);
    // One address may add at most VISITS_PER_MINUTE a minute (the rest answer the same, uncounted).
    s.clock.advance(60_000);
    for (let i = 0; i < VISITS_PER_MINUTE + 15; i++)
      await anon('sh', 'POST', '/api/v1/referrals/visit', { ref: catCode });
    await signInAll(); // the clock moved a day
    const me = await json<{ visits: number; visits_by_day: { day: string; visits: number }[] }>(
      call(S.cat!, 'GET', '/api/v1/referrals/me'),
    );
    expect(me.visits_by_day).toEqual([
      { day: day1, visits: 3 },
      { day: day2, visits: 2 + VISITS_PER_MINUTE },
    ]);
    expect(me.visits).toBe(5 + VISITS_PER_MINUTE);
    expect(await visits()).toBe(2);
  });

  test('sign-ups: a known ref credits its holder; unknown or malformed refs are ignored, never refused', async () => {
    const signup = (email: string, ref?: unknown) =>
      anon('sh', 'POST', '/api/v1/auth/signup', {
        email,
        password: PW,
        ...(ref === undefined ? {} : { ref }),
      });
    expect((await signup('neo@sh.test', catCode)).status).toBe(201);
    expect((await signup('uno@sh.test', 'zzzzzzzzzz')).status).toBe(201);
    expect((await signup('num@sh.test', 12345)).status).toBe(201);
    const rows = await inDb('sh', (db) =>
      db
        .query<{ email: string; referrer: string }, []>(
          `SELECT u.email, r.email AS referrer FROM referral_signups s
           JOIN users u ON u.id = s.user_id JOIN users r ON r.id = s.referrer_id`,
        )
        .all(),
    );
    expect(rows).toEqual([{ email: 'neo@sh.test', referrer: 'cat@sh.test' }]);
    S.neo = await signInTo(s, 'sh', 'neo@sh.test', PW);
    expect((await json<{ signups: number }>(call(S.cat!, 'GET', '/api/v1/referrals/me'))).signups).toBe(1);
    expect((await json<{ signups: number }>(call(S.bob!, 'GET', '/api/v1/referrals/me'))).signups).toBe(0);
  });

  test('a sign-up still waiting for its email confirmation is not counted', async () => {
    const owner = await signInTo(s, 'pend', P.pend!.owner.email, P.pend!.owner.password);
    const ref = (await json<{ code: string }>(call(owner, 'GET', '/api/v1/referrals/me'))).code;
    const r = await anon('pend', 'POST', '/api/v1/auth/signup', {
      email: 'wait@pend.test',
      password: PW,
      ref,
    });
    expect(r.status).toBe(202);
    expect(
      await inDb(
        'pend',
        (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM referral_signups').get()!.n,
      ),
    ).toBe(1);
    expect((await json<{ signups: number }>(call(owner, 'GET', '/api/v1/referrals/me'))).signups).toBe(0);
    // Once confirmed, it counts.
    await inDb('pend', (db) =>
      db.query("UPDATE users SET email_verified_at = 1 WHERE email = 'wait@pend.test'").run(),
    );
    expect((await json<{ signups: number }>(call(owner, 'GET', '/api/v1/referrals/me'))).signups).toBe(1);
  });

  test('installs: a new install by someone else credits the referrer; self-referral and re-installs do not', async () => {
    const install = (se: Session, ref?: unknown) =>
      call(se, 'POST', `/api/v1/marketplace/${listingA}/install`, ref === undefined ? undefined : { ref });
    expect((await install(S.neo!, catCode)).status).toBe(201);
    expect((await install(S.cat!, catCode)).status).toBe(201); // self-referral: ignored
    expect((await install(S.ann!, bobCode)).status).toBe(201);
    expect((await install(S.ann!, catCode)).status).toBe(201); // not new: stays Bob's
    const referrers = () =>
      inDb('sh', (db) =>
        db
          .query<{ user: string; referrer: string | null }, [string]>(
            `SELECT u.email AS user, r.email AS referrer FROM listing_installs i JOIN users u ON u.id = i.user_id
             LEFT JOIN users r ON r.id = i.referrer_id WHERE i.listing_id = ? ORDER BY u.email`,
          )
          .all(listingA),
      );
    expect(await referrers()).toEqual([
      { user: 'ann@sh.test', referrer: 'bob@sh.test' },
      { user: 'cat@sh.test', referrer: null },
      { user: 'neo@sh.test', referrer: 'cat@sh.test' },
    ]);
    expect((await json<{ installs: number }>(call(S.cat!, 'GET', '/api/v1/referrals/me'))).installs).toBe(1);
    expect(
      (await json<{ installs: number }>(call(S.bob!, 'GET', '/api/v1/referrals/me?days=90'))).installs,
    ).toBe(1);
    // The admins' table of referrers; members may not read it.
    const all = await json<{
      referrers: { email: string; visits: number; signups: number; installs: number }[];
    }>(call(S.owner!, 'GET', '/api/v1/referrals'));
    expect(all.referrers.map((r) => [r.email, r.visits, r.signups, r.installs])).toEqual([
      ['cat@sh.test', 5 + VISITS_PER_MINUTE, 1, 1],
      ['bob@sh.test', 0, 0, 1],
    ]);
    expect((await call(S.ann!, 'GET', '/api/v1/referrals')).status).toBe(403);
    expect(await code(call(S.cat!, 'GET', '/api/v1/referrals/me?days=7'))).toBe('request.invalid');
  });

  test('with features.viral_sharing off: the routes answer 404 feature.disabled and refs are ignored', async () => {
    const offCode = await inDb('off', (db) => {
      const owner = db.query<{ id: string }, []>("SELECT id FROM users WHERE role = 'owner'").get()!.id;
      return referralCodeOf(db, owner, s.clock.now()).code;
    });
    for (const [method, path] of [
      ['GET', '/api/v1/referrals/me'],
      ['GET', '/api/v1/referrals'],
      ['POST', '/api/v1/agents/agt_x/share'],
    ] as const)
      expect(await code(call(S.offOwner!, method, path))).toBe('feature.disabled');
    expect(await code(anon('off', 'POST', '/api/v1/referrals/visit', { ref: offCode }))).toBe(
      'feature.disabled',
    );
    expect(
      (await anon('off', 'POST', '/api/v1/auth/signup', { email: 'x@off.test', password: PW, ref: offCode }))
        .status,
    ).toBe(201);
    const id = await newAgent(S.offOwner!, { name: 'Off Agent' });
    await publish(S.offOwner!, id);
    const l = await json<{ listing: { id: string } }>(
      call(S.offOwner!, 'POST', `/api/v1/agents/${id}/listing`, {}),
    );
    const x = await signInTo(s, 'off', 'x@off.test', PW);
    expect(
      (await call(x, 'POST', `/api/v1/marketplace/${l.listing.id}/install`, { ref: offCode })).status,
    ).toBe(201);
    expect(
      await inDb('off', (db) => ({
        signups: db.query<{ n: number }, []>('SELECT count(*) AS n FROM referral_signups').get()!.n,
        installs: db.query<{ n: number }, []>('SELECT count(referrer_id) AS n FROM listing_installs').get()!
          .n,
        visits: db.query<{ n: number }, []>('SELECT count(*) AS n FROM referral_visits').get()!.n,
      })),
    ).toEqual({ signups: 0, installs: 0, visits: 0 });
  });
});

interface Figures {
  installs: number;
  referred_installs: number;
  conversations: number;
  messages: number;
  users: number;
  ratings: number;
  rating: number | null;
  usage: { calls: number; tokens_in: number; tokens_out: number; cost_micro: number; markup_micro: number };
}
interface Stats {
  creator: string;
  agents: { id: string; totals: Figures; versions: ({ version: number | null } & Figures)[] }[];
  totals: Figures;
  referrals: { visits: number; signups: number; installs: number };
}

describe("usage attribution and the creator's view", () => {
  test("each agent chat's usage row names the agent, its version and its creator; the figures match the scenario", async () => {
    // Cat publishes version 2 and lists it; Bob installs it. Ann and Neo keep version 1.
    await call(S.cat!, 'PATCH', `/api/v1/agents/${agentA}`, { persona: 'v2 persona' });
    await publish(S.cat!, agentA);
    expect((await call(S.cat!, 'POST', `/api/v1/agents/${agentA}/listing`, {})).status).toBe(201);
    expect((await call(S.bob!, 'POST', `/api/v1/marketplace/${listingA}/install`)).status).toBe(201);
    // Chats: Ann 1 turn (v1), Neo 2 turns in one conversation (v1), Bob 1 (v2), Cat tests the draft (1).
    const convs: Record<string, string> = {};
    convs.ann = await startChat(S.ann!, agentA);
    await turn(S.ann!, convs.ann);
    convs.neo = await startChat(S.neo!, agentA);
    await turn(S.neo!, convs.neo);
    await turn(S.neo!, convs.neo, 'more');
    convs.bob = await startChat(S.bob!, agentA);
    await turn(S.bob!, convs.bob);
    convs.cat = await startChat(S.cat!, agentA, true);
    await turn(S.cat!, convs.cat);
    // Dan's agent, which Ann uses once: his, not Cat's.
    const agentD = await newAgent(S.dan!, { name: 'Dan Bot', visibility: 'platform' });
    await publish(S.dan!, agentD);
    const convD = await startChat(S.ann!, agentD);
    await turn(S.ann!, convD);
    // Reviews: Ann 4 and Neo 5 on version 1, Bob 2 on version 2.
    for (const [who, rating] of [
      ['ann', 4],
      ['neo', 5],
      ['bob', 2],
    ] as const)
      expect(
        (await call(S[who]!, 'POST', `/api/v1/marketplace/${listingA}/reviews`, { rating })).status,
      ).toBe(200);

    await s.ai.meter.flush();
    const ids = await inDb('sh', (db) =>
      Object.fromEntries(
        db
          .query<{ email: string; id: string }, []>('SELECT email, id FROM users')
          .all()
          .map((u) => [u.email, u.id]),
      ),
    );
    const rows = await inDb('sh', (db) =>
      db
        .query<{ agent_id: string; agent_version: number | null; creator_id: string | null; n: number }, []>(
          `SELECT agent_id, agent_version, creator_id, count(*) AS n FROM usage_events WHERE kind = 'chat'
           AND agent_id IS NOT NULL GROUP BY agent_id, agent_version, creator_id ORDER BY agent_id, agent_version`,
        )
        .all(),
    );
    const cat = ids['cat@sh.test']!;
    expect(rows).toEqual(
      [
        { agent_id: linkAgent, agent_version: 1, creator_id: cat, n: 1 },
        { agent_id: agentA, agent_version: null, creator_id: cat, n: 1 },
        { agent_id: agentA, agent_version: 1, creator_id: cat, n: 3 },
        { agent_id: agentA, agent_version: 2, creator_id: cat, n: 1 },
        { agent_id: agentD, agent_version: 1, creator_id: ids['dan@sh.test']!, n: 1 },
      ].sort((a, b) =>
        a.agent_id === b.agent_id
          ? (a.agent_version ?? 0) - (b.agent_version ?? 0)
          : a.agent_id < b.agent_id
            ? -1
            : 1,
      ),
    );

    // The tokens the assistant messages recorded, per conversation: what the figures must add up to.
    const tokensOf = async (se: Session, id: string) => {
      const c = await json<{ messages: { usage?: { prompt_tokens: number; completion_tokens: number } }[] }>(
        call(se, 'GET', `/api/v1/conversations/${id}`),
      );
      return c.messages.reduce(
        (t, m) => ({
          in: t.in + (m.usage?.prompt_tokens ?? 0),
          out: t.out + (m.usage?.completion_tokens ?? 0),
        }),
        { in: 0, out: 0 },
      );
    };
    const tk = {
      ann: await tokensOf(S.ann!, convs.ann),
      neo: await tokensOf(S.neo!, convs.neo),
      bob: await tokensOf(S.bob!, convs.bob),
      cat: await tokensOf(S.cat!, convs.cat),
    };
    expect(tk.ann.in).toBeGreaterThan(0);

    const st = await json<Stats>(call(S.cat!, 'GET', '/api/v1/creator/stats'));
    expect(st.creator).toBe(cat);
    expect(st.agents.map((a) => a.id).sort()).toEqual([linkAgent, agentA].sort());
    const a = st.agents.find((x) => x.id === agentA)!;
    const pick = (f: Figures) => ({
      installs: f.installs,
      referred: f.referred_installs,
      conversations: f.conversations,
      messages: f.messages,
      users: f.users,
      ratings: f.ratings,
      rating: f.rating,
      calls: f.usage.calls,
      tokens_in: f.usage.tokens_in,
      tokens_out: f.usage.tokens_out,
    });
    expect(a.versions.map((v) => [v.version, pick(v)])).toEqual([
      [
        2,
        {
          installs: 1,
          referred: 0,
          conversations: 1,
          messages: 2,
          users: 1,
          ratings: 1,
          rating: 2,
          calls: 1,
          tokens_in: tk.bob.in,
          tokens_out: tk.bob.out,
        },
      ],
      [
        1,
        {
          installs: 3,
          referred: 2,
          conversations: 2,
          messages: 6,
          users: 2,
          ratings: 2,
          rating: 4.5,
          calls: 3,
          tokens_in: tk.ann.in + tk.neo.in,
          tokens_out: tk.ann.out + tk.neo.out,
        },
      ],
      [
        null,
        {
          installs: 0,
          referred: 0,
          conversations: 1,
          messages: 2,
          users: 1,
          ratings: 0,
          rating: null,
          calls: 1,
          tokens_in: tk.cat.in,
          tokens_out: tk.cat.out,
        },
      ],
    ]);
    expect(pick(a.totals)).toMatchObject({
      installs: 4,
      referred: 2,
      conversations: 4,
      messages: 10,
      users: 4,
      ratings: 3,
      rating: 3.67,
      calls: 5,
    });
    const all = Object.values(tk).reduce((t, x) => ({ in: t.in + x.in, out: t.out + x.out }), {
      in: 0,
      out: 0,
    });
    expect(a.totals.usage).toEqual({
      calls: 5,
      tokens_in: all.in,
      tokens_out: all.out,
      cost_micro: all.in * 1000 + all.out * 2000,
      markup_micro: a.totals.usage.markup_micro,
    });
    // The link agent: Ann's one conversation (its turn after the rotation was refused, unbilled).
    expect(pick(st.agents.find((x) => x.id === linkAgent)!.totals)).toMatchObject({
      conversations: 1,
      messages: 2,
      calls: 1,
      users: 1,
      installs: 0,
    });
    expect(st.totals).toMatchObject({ installs: 4, conversations: 5, ratings: 3 });
    expect(st.referrals).toMatchObject({ visits: 5 + VISITS_PER_MINUTE, signups: 1, installs: 1 });

    // Dan sees only his; Cat may not read Dan's; an admin reads anyone's.
    const dan = await json<Stats>(call(S.dan!, 'GET', '/api/v1/creator/stats'));
    expect(dan.agents.map((x) => x.id)).toEqual([agentD]);
    expect(pick(dan.agents[0]!.totals)).toMatchObject({ conversations: 1, messages: 2, users: 1, calls: 1 });
    expect((await call(S.cat!, 'GET', `/api/v1/creator/stats?creator=${ids['dan@sh.test']}`)).status).toBe(
      403,
    );
    const byAdmin = await json<Stats>(call(S.owner!, 'GET', `/api/v1/creator/stats?creator=${cat}`));
    expect(byAdmin).toEqual(st);
    // Members are not creators.
    expect((await call(S.ann!, 'GET', '/api/v1/creator/stats')).status).toBe(403);

    // A new owner: later usage is the new creator's, earlier usage stays Cat's.
    await inDb('sh', (db) =>
      db.query('UPDATE agents SET owner_id = ? WHERE id = ?').run(ids['dan@sh.test']!, agentA),
    );
    await turn(S.bob!, convs.bob);
    await s.ai.meter.flush();
    const after = await json<Stats>(call(S.cat!, 'GET', '/api/v1/creator/stats'));
    const formerly = after.agents.find((x) => x.id === agentA)!;
    expect(formerly.totals.usage.calls).toBe(5);
    const dan2 = await json<Stats>(call(S.dan!, 'GET', '/api/v1/creator/stats'));
    expect(dan2.agents.find((x) => x.id === agentA)!.totals.usage.calls).toBe(1);
  });
});
