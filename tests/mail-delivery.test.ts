import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { App, Logger } from '../src/app/index.ts';
import { listOutbox, Mailer, queueMail, readOutbox } from '../src/identity/index.ts';
import { claimDueMail } from '../src/identity/mail/outbox.ts';
import { mailPlatformsOf } from '../src/server/start.ts';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type LoopbackSmtp, startLoopbackSmtp } from './smtp.ts';
import { waitFor } from './wait.ts';

const LOGO =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let smtp: LoopbackSmtp;
let s: InProcessServer;

interface Platform {
  id: string;
  host: string;
  owner: { email: string; password: string };
}

async function platform(slug: string, body: Record<string, unknown>): Promise<Platform> {
  const res = await s.operatorApi('POST', '/platforms', { slug, ...body });
  if (res.status !== 201) throw new Error(`create ${slug}: ${res.status} ${await res.text()}`);
  const r = (await res.json()) as { admin: { email: string; password: string }; platform: { id: string } };
  return { id: r.platform.id, host: `${slug}.localhost`, owner: r.admin };
}

const resetFor = (p: Platform, email: string) =>
  s.request(p.host, '/api/v1/auth/password-reset', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email }),
  });

const rowsOf = (p: Platform, to: string) =>
  s.app.platformDbs.use(p.id, (db) =>
    listOutbox(db, ['queued', 'sending', 'sent', 'failed', 'bounced']).filter((m) => m.to_email === to),
  );
const receivedBy = (to: string) => smtp.received.filter((r) => r.to.includes(to));

beforeAll(async () => {
  smtp = await startLoopbackSmtp();
  s = await inProcessServer({
    config: {
      mail: {
        from: 'noreply@mail.test',
        smtp: { host: '127.0.0.1', port: smtp.port, starttls: 'never' },
        max_attempts: 3,
        retry_base_ms: 60_000,
      },
    },
  });
});
afterAll(async () => {
  await s.close();
  await smtp.close();
});

describe('mail is delivered through SMTP', () => {
  let acme: Platform;
  beforeAll(async () => {
    acme = await platform('acme', {
      owner_email: 'owner@acme.test',
      blueprint: {
        identity: {
          name: 'Acme Learning',
          branding: { logo: LOGO, colors: { primary: '#112233' } },
        },
      },
    });
  });

  test('a reset link arrives in the platform brand (name, colours, logo), plain text and HTML; the body is wiped', async () => {
    expect((await resetFor(acme, 'owner@acme.test')).status).toBe(202);
    // Woken by the queueing commit: no sweep is run by the test.
    const [got] = await waitFor(
      () => (receivedBy('owner@acme.test').length === 1 ? receivedBy('owner@acme.test') : null),
      {
        what: 'the reset mail',
      },
    );
    const m = got!.mail;
    expect(m.from?.value[0]).toEqual({ name: 'Acme Learning', address: 'noreply@mail.test' });
    expect(got!.from).toBe('noreply@mail.test');
    expect(m.subject).toBe('Reset your password');
    expect(m.text).toMatch(/http:\/\/acme\.localhost:8080\/app\/reset-password\?token=[A-Za-z0-9_-]{20,}/);
    expect(m.text).toContain('Acme Learning · Powered by Soulfra');
    const html = String(m.html);
    expect(html).toContain('background:#112233');
    expect(html).toContain('Acme Learning');
    expect(html).toMatch(/<a href="http:\/\/acme\.localhost:8080\/app\/reset-password\?token=/);
    // The logo travels as an inline part (mailparser puts it back in place as a data: URI).
    expect(html).toContain('<img src="data:image/png;base64,');
    expect(m.attachments.map((a: { cid?: string; contentType: string }) => [a.cid, a.contentType])).toEqual([
      ['logo@brand', 'image/png'],
    ]);
    expect(m.headers.get('x-mailer')).toBeUndefined();
    const [row] = await rowsOf(acme, 'owner@acme.test');
    expect(m.messageId).toBe(`<${row!.id}@mail.test>`);
    expect(row).toMatchObject({ status: 'sent', attempts: 1, last_error: null });
    // The live link is gone from the file once delivered.
    const [opened] = await s.app.platformDbs.use(acme.id, (db) =>
      readOutbox(db, { to: 'owner@acme.test', includeSent: true }),
    );
    expect(opened!.body).toBe('');
  });

  test('a white-labeled platform: its own sender, and no "Soulfra" anywhere in the message, headers included', async () => {
    const white = await platform('brandco', {
      owner_email: 'owner@brandco.test',
      // White-label needs a plan that includes it: the business template's (Business).
      template: 'business',
      blueprint: {
        identity: { name: 'BrandCo', email_from: 'hello@brandco.test' },
        features: { white_label: true },
      },
    });
    expect((await resetFor(white, 'owner@brandco.test')).status).toBe(202);
    const [got] = await waitFor(() =>
      receivedBy('owner@brandco.test').length === 1 ? receivedBy('owner@brandco.test') : null,
    );
    expect(got!.from).toBe('hello@brandco.test');
    expect(got!.mail.from?.value[0]).toEqual({ name: 'BrandCo', address: 'hello@brandco.test' });
    expect(got!.mail.text).toContain('BrandCo');
    expect(got!.raw).not.toMatch(/soulfra/i);
    expect(String(got!.mail.html)).not.toMatch(/soulfra/i);
  });

  test('a temporary refusal (451) is retried after the backoff (injected clock), then delivered once', async () => {
    const p = await platform('flaky', { owner_email: 'flaky@flaky.test' });
    smtp.refuse('flaky@flaky.test', [451]);
    await resetFor(p, 'flaky@flaky.test');
    const [first] = await waitFor(async () => {
      const r = await rowsOf(p, 'flaky@flaky.test');
      return r[0]?.status === 'queued' && r[0].attempts === 1 ? r : null;
    });
    expect(first!.last_error).toMatch(/^451: /);
    expect(first!.next_attempt_at).toBe(s.clock.now() + 60_000);
    // Not yet due: a pass sends nothing.
    await s.mailer.runDue();
    expect(smtp.attempts('flaky@flaky.test')).toBe(1);
    s.clock.advance(60_000);
    await s.mailer.runDue();
    expect(receivedBy('flaky@flaky.test').length).toBe(1);
    expect((await rowsOf(p, 'flaky@flaky.test'))[0]).toMatchObject({
      status: 'sent',
      attempts: 2,
      last_error: null,
    });
  });

  test('a permanent refusal (550) bounces at once: never retried, body wiped', async () => {
    const p = await platform('gone', { owner_email: 'gone@gone.test' });
    smtp.refuse('gone@gone.test', [550, 550, 550]);
    await resetFor(p, 'gone@gone.test');
    const [row] = await waitFor(async () => {
      const r = await rowsOf(p, 'gone@gone.test');
      return r[0]?.status === 'bounced' ? r : null;
    });
    expect(row).toMatchObject({ attempts: 1 });
    expect(row!.last_error).toMatch(/^550: /);
    s.clock.advance(24 * 3_600_000);
    await s.mailer.runDue();
    expect(smtp.attempts('gone@gone.test')).toBe(1);
    const [opened] = await s.app.platformDbs.use(p.id, (db) =>
      readOutbox(db, { to: 'gone@gone.test', includeSent: true }),
    );
    expect(opened!.body).toBe('');
  });

  test('temporary refusals on every attempt: failed after max_attempts (3), backoff doubling', async () => {
    const p = await platform('down', { owner_email: 'down@down.test' });
    smtp.refuse('down@down.test', [451, 452, 421]);
    await resetFor(p, 'down@down.test');
    // Once the first attempt's outcome is recorded (queued again), not while it is in flight.
    await waitFor(async () => {
      const r = (await rowsOf(p, 'down@down.test'))[0];
      return r?.status === 'queued' && r.attempts === 1;
    });
    s.clock.advance(60_000);
    await s.mailer.runDue();
    const second = (await rowsOf(p, 'down@down.test'))[0]!;
    expect(second).toMatchObject({ status: 'queued', attempts: 2 });
    expect(second.next_attempt_at).toBe(s.clock.now() + 120_000);
    s.clock.advance(120_000);
    await s.mailer.runDue();
    const last = (await rowsOf(p, 'down@down.test'))[0]!;
    expect(last).toMatchObject({ status: 'failed', attempts: 3 });
    expect(last.last_error).toMatch(/^421: /);
    expect(receivedBy('down@down.test').length).toBe(0);
  });

  test('the operator lists undelivered mail by state, and sends a test message in a platform brand', async () => {
    const failed = await s.operatorApi('GET', '/mail?status=failed,bounced');
    expect(failed.status).toBe(200);
    const body = (await failed.json()) as {
      delivery: { smtp: boolean };
      messages: { platform: string; status: string; to: string }[];
    };
    expect(body.delivery.smtp).toBe(true);
    expect(body.messages.map((m) => [m.platform, m.status, m.to]).sort()).toEqual([
      ['down', 'failed', 'down@down.test'],
      ['gone', 'bounced', 'gone@gone.test'],
    ]);
    expect(JSON.stringify(body)).not.toContain('token=');
    const bad = await s.operatorApi('GET', '/mail?status=lost');
    expect(bad.status).toBe(400);
    const test1 = await s.operatorApi('POST', '/mail/test', { to: 'ops@ops.test', platform: 'acme' });
    expect(test1.status).toBe(200);
    const got = await waitFor(() => receivedBy('ops@ops.test')[0]);
    expect(got.mail.subject).toBe('Test message from Acme Learning');
    smtp.refuse('nobody@ops.test', [550]);
    const refused = await s.operatorApi('POST', '/mail/test', { to: 'nobody@ops.test' });
    expect(refused.status).toBe(502);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('mail.send_failed');
  });

  test('a restart mid-attempt: delivered at least once (same Message-ID), and what was sent is never sent again', async () => {
    const p = await platform('restart', { owner_email: 'r@restart.test' });
    await resetFor(p, 'r@restart.test');
    await waitFor(() => receivedBy('r@restart.test').length === 1);
    await s.mailer.stop();
    // A second message, claimed for an attempt when the process stopped (as a crash leaves it).
    const id = await s.app.platformDbs.use(p.id, (db) => {
      const mid = db.transaction(() =>
        queueMail(
          db,
          { to_email: 'r@restart.test', template: 'note', subject: 'Second', body: 'two' },
          s.clock.now(),
        ),
      )();
      expect(claimDueMail(db, s.clock.now())?.id).toBe(mid);
      return mid;
    });
    expect((await rowsOf(p, 'r@restart.test')).map((r) => r.status)).toEqual(['sent', 'sending']);
    const again = new Mailer(s.app, mailPlatformsOf(s.tenancy));
    again.start();
    try {
      await waitFor(() => receivedBy('r@restart.test').length === 2);
      await again.runDue();
      const all = receivedBy('r@restart.test');
      expect(all.map((r) => r.mail.subject)).toEqual(['Reset your password', 'Second']);
      expect(all[1]!.mail.messageId).toBe(`<${id}@mail.test>`);
      expect((await rowsOf(p, 'r@restart.test')).map((r) => [r.status, r.attempts])).toEqual([
        ['sent', 1],
        ['sent', 2],
      ]);
    } finally {
      await again.stop();
    }
  });
});

describe('no SMTP configured', () => {
  test('the mailer says so at start, mail stays queued and is listed, the test send is refused', async () => {
    const bare = await inProcessServer();
    try {
      const lines: string[] = [];
      const capture = {
        debug() {},
        info: (m: string) => lines.push(`info ${m}`),
        warn: (m: string) => lines.push(`warn ${m}`),
        error: (m: string) => lines.push(`error ${m}`),
        child: () => capture,
      } as unknown as Logger;
      const app = Object.create(bare.app, { log: { value: capture } }) as App;
      const m = new Mailer(app, mailPlatformsOf(bare.tenancy));
      m.start();
      await m.stop();
      expect(lines).toEqual([
        'warn mail: not delivered: no SMTP server is configured (mail.smtp in soulfra.yaml); messages stay queued (GET /_operator/api/mail, soulfra mail list)',
      ]);
      const res = await bare.operatorApi('POST', '/platforms', {
        slug: 'quiet',
        owner_email: 'q@quiet.test',
      });
      expect(res.status).toBe(201);
      await bare.request('quiet.localhost', '/api/v1/auth/password-reset', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'q@quiet.test' }),
      });
      const list = await bare.operatorApi('GET', '/mail');
      const body = (await list.json()) as {
        delivery: { smtp: boolean; problem: string };
        messages: { platform: string; status: string; template: string; attempts: number }[];
      };
      expect(body.delivery).toEqual({
        smtp: false,
        problem: 'no SMTP server is configured (mail.smtp in soulfra.yaml)',
      });
      expect(body.messages.map((x) => [x.platform, x.status, x.template, x.attempts])).toEqual([
        ['quiet', 'queued', 'reset_password', 0],
      ]);
      const t = await bare.operatorApi('POST', '/mail/test', { to: 'ops@ops.test' });
      expect(t.status).toBe(409);
      expect(((await t.json()) as { error: { code: string } }).error.code).toBe('mail.not_configured');
    } finally {
      await bare.close();
    }
  });

  test('an SMTP password named by pass_env but unset: not delivered, said why', async () => {
    const bare = await inProcessServer({
      config: {
        mail: {
          smtp: { host: '127.0.0.1', port: 25, auth: { user: 'u', pass_env: 'SOULFRA_TEST_SMTP_PASS' } },
        },
      },
      env: {},
    });
    try {
      expect(bare.mailer.configured).toBe(false);
      expect(bare.mailer.problem).toBe(
        'mail.smtp.auth.pass_env names SOULFRA_TEST_SMTP_PASS, which is not set',
      );
    } finally {
      await bare.close();
    }
  });
});
