import type { Database } from 'bun:sqlite';
import nodemailer, { type Transporter } from 'nodemailer';
import type { App, InstanceConfig } from '../../app/index.ts';
import { readMeta } from '../../db/index.ts';
import { AppError } from '../../shared/errors.ts';
import type { PlatformBlueprint } from '../../tenancy/index.ts';
import { nextOutboxDue, outboxAttempts } from './outbox.repository.ts';
import {
  claimDueMail,
  MAIL_WAKE,
  markMailBounced,
  markMailDelivered,
  markMailRetry,
  type OutboxMessage,
  requeueInterrupted,
} from './outbox.ts';
import { brandOf, type MailBrand, renderMail } from './templates.ts';

/** The platforms whose mail queues the mailer serves (the tenancy service's view of them). */
export interface MailPlatforms {
  /** Platforms whose database may be opened now (archived ones left out). */
  ids(): string[];
  /** Whether one of them still may be (not archived, not deleted). */
  live(id: string): boolean;
  blueprintOf(id: string): PlatformBlueprint;
}

export type MailConfig = NonNullable<InstanceConfig['mail']>;

/** Defaults of `mail` in soulfra.yaml. */
export const MAIL_DEFAULTS = {
  maxAttempts: 8,
  retryBaseMs: 60_000,
  retryMaxMs: 6 * 3_600_000,
  tickMs: 5_000,
};

/** Why SMTP delivery is off, or null when it is on. */
export function smtpProblem(config: InstanceConfig, env: Record<string, string | undefined>): string | null {
  const smtp = config.mail?.smtp;
  if (!smtp) return 'no SMTP server is configured (mail.smtp in soulfra.yaml)';
  if (smtp.auth && !env[smtp.auth.pass_env])
    return `mail.smtp.auth.pass_env names ${smtp.auth.pass_env}, which is not set`;
  return null;
}

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1);

/** An SMTP failure as stored (`last_error`): the reply code or error code, and the message. */
function describe(e: unknown): string {
  const err = e as { responseCode?: number; code?: string; message?: string };
  const head = err.responseCode ? String(err.responseCode) : (err.code ?? 'error');
  return `${head}: ${String(err.message ?? e)}`.replace(/\s+/g, ' ').slice(0, 500);
}

/**
 * A permanent refusal of this message (a 5xx reply to MAIL FROM, RCPT TO or DATA): it bounces.
 * A 5xx to AUTH or to the greeting is the relay's set-up, not the message's: retried.
 */
function isPermanent(e: unknown): boolean {
  const err = e as { responseCode?: number; code?: string; command?: string };
  if (!err.responseCode || err.responseCode < 500 || err.responseCode >= 600) return false;
  return (
    err.code === 'EENVELOPE' || err.code === 'EMESSAGE' || /^(MAIL FROM|RCPT TO|DATA)/.test(err.command ?? '')
  );
}

/**
 * Delivers every platform's mail queue (the `outbox` table) through SMTP with nodemailer: a
 * lifecycle component of `serve`. Woken when a message is queued (after its commit) and by a
 * periodic tick for retries; one message at a time per pass.
 *
 * Each attempt is claimed (`sending`, attempt counted) in a committed write before the SMTP
 * conversation; accepted → `sent` and the body wiped; a temporary failure (4xx, connection,
 * timeout) → queued again after a backoff (`retry_base_ms` doubling, at most 6 h), `failed` after
 * `max_attempts`; a permanent refusal (5xx to the envelope or the data) → `bounced`. Delivery
 * is at least once: a message left `sending` by a stop mid-attempt is queued again at start and
 * sent with the same Message-ID. Times come from the App's clock.
 */
export class Mailer {
  readonly #app: App;
  readonly #platforms: MailPlatforms;
  readonly #config: MailConfig;
  readonly #transport: Transporter | null;
  readonly #problem: string | null;
  readonly #maxAttempts: number;
  readonly #retryBaseMs: number;
  readonly #tickMs: number;
  /** Platforms with queued mail, and when their next message is due (epoch ms). */
  readonly #due = new Map<string, number>();
  #pass: Promise<void> | null = null;
  #again = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #stopped = false;

  constructor(
    app: App,
    platforms: MailPlatforms,
    opts: { env?: Record<string, string | undefined>; tickMs?: number } = {},
  ) {
    this.#app = app;
    this.#platforms = platforms;
    this.#config = app.config.mail ?? {};
    const env = opts.env ?? process.env;
    this.#problem = smtpProblem(app.config, env);
    this.#maxAttempts = this.#config.max_attempts ?? MAIL_DEFAULTS.maxAttempts;
    this.#retryBaseMs = this.#config.retry_base_ms ?? MAIL_DEFAULTS.retryBaseMs;
    this.#tickMs = opts.tickMs ?? MAIL_DEFAULTS.tickMs;
    const smtp = this.#config.smtp;
    if (smtp && this.#problem === null) {
      const starttls = smtp.starttls ?? 'required';
      const timeout = smtp.timeout_ms ?? 30_000;
      this.#transport = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure ?? false,
        requireTLS: !smtp.secure && starttls === 'required',
        ignoreTLS: !smtp.secure && starttls === 'never',
        auth: smtp.auth ? { user: smtp.auth.user, pass: env[smtp.auth.pass_env] ?? '' } : undefined,
        name: smtp.helo ?? domainOf(this.defaultFrom()),
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        // Nothing of a message is read from a file or a URL on this machine's behalf.
        disableFileAccess: true,
        disableUrlAccess: true,
      });
    } else {
      this.#transport = null;
    }
  }

  /** Whether messages are delivered (SMTP configured and usable). */
  get configured(): boolean {
    return this.#transport !== null;
  }

  /** Why they are not, or null. */
  get problem(): string | null {
    return this.#problem;
  }

  /** The instance's sender address (`mail.from`, else noreply@<base_domain>). */
  defaultFrom(): string {
    return this.#config.from ?? `noreply@${this.#app.config.base_domain}`;
  }

  /**
   * Starts delivery: says at start whether mail is delivered (one line), queues again what a
   * stop left mid-attempt, finds every platform's due mail, and listens for new mail.
   */
  start(): void {
    const log = this.#app.log;
    if (!this.#transport) {
      log.warn(
        `mail: not delivered: ${this.#problem}; messages stay queued (GET /_operator/api/mail, soulfra mail list)`,
      );
      return;
    }
    const smtp = this.#config.smtp!;
    log.info('mail: delivering through SMTP', {
      host: smtp.host,
      port: smtp.port,
      tls: smtp.secure ? 'implicit' : (smtp.starttls ?? 'required'),
      from: this.defaultFrom(),
    });
    const now = this.#app.clock.now();
    for (const id of this.#platforms.ids()) {
      const next = this.#withDb(id, (db) => {
        const n = requeueInterrupted(db, now);
        if (n > 0) log.warn('mail: queued again after an interrupted attempt', { platform: id, messages: n });
        return nextOutboxDue(db);
      });
      if (next !== null && next !== undefined) this.#due.set(id, next);
    }
    this.#app.state.get(MAIL_WAKE).wake = (db) => this.#wake(db);
    this.#timer = setInterval(() => void this.runDue(), this.#tickMs);
    this.#timer.unref?.();
    void this.runDue();
  }

  /** Stops: no new passes; the message being sent finishes (its state is recorded). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    const w = this.#app.state.get(MAIL_WAKE);
    w.wake = null;
    await this.#pass;
    this.#transport?.close();
  }

  /**
   * Runs a delivery pass over the platforms whose mail is due now (one pass at a time; a call
   * during a pass asks for another after it). Resolves when the pass it started or joined is over.
   */
  runDue(): Promise<void> {
    if (this.#stopped || !this.#transport) return Promise.resolve();
    if (this.#pass) {
      this.#again = true;
      return this.#pass;
    }
    this.#pass = (async () => {
      // Never settles synchronously: `#pass` is set before the `finally` below clears it.
      await null;
      try {
        do {
          this.#again = false;
          const now = this.#app.clock.now();
          const ready = [...this.#due].filter(([, at]) => at <= now).map(([id]) => id);
          for (const id of ready) {
            if (this.#stopped) return;
            await this.#deliver(id);
          }
        } while (this.#again && !this.#stopped);
      } catch (e) {
        this.#app.log.error('mail: delivery pass failed', { err: String(e) });
      } finally {
        this.#pass = null;
      }
    })();
    return this.#pass;
  }

  /** Sends a test message now (not queued), in a platform's brand or the instance's. */
  async sendTest(
    to: string,
    platformId: string | null,
  ): Promise<{ message_id: string; response: string; from: string }> {
    if (!this.#transport)
      throw new AppError('mail.not_configured', `mail is not delivered: ${this.#problem}`, 409);
    const brand: MailBrand = platformId
      ? brandOf(this.#platforms.blueprintOf(platformId))
      : {
          name: this.#app.config.base_domain,
          whiteLabel: true,
          primary: '#333333',
          background: '#f5f5f5',
          text: '#1a1a1a',
          logo: null,
        };
    const bp = platformId ? this.#platforms.blueprintOf(platformId) : null;
    const from = bp?.identity.email_from ?? this.defaultFrom();
    const id = `test-${this.#app.clock.now()}`;
    try {
      const info = await this.#send(brand, from, {
        id,
        to_email: to,
        subject: `Test message from ${brand.name}`,
        body: `This is a test message from ${brand.name}. If you can read it, mail is delivered.`,
      });
      return { message_id: info.messageId, response: info.response, from };
    } catch (e) {
      throw new AppError('mail.send_failed', `the SMTP server refused the test message: ${describe(e)}`, 502);
    }
  }

  #wake(db: Database): void {
    if (this.#stopped) return;
    const id = readMeta(db, 'platform_id');
    if (!id) return;
    this.#due.set(id, Math.min(this.#due.get(id) ?? Number.POSITIVE_INFINITY, this.#app.clock.now()));
    void this.runDue();
  }

  #withDb<T>(platformId: string, fn: (db: Database) => T): T | undefined {
    try {
      const lease = this.#app.platformDbs.acquire(platformId);
      try {
        return fn(lease.db);
      } finally {
        lease.release();
      }
    } catch (e) {
      this.#app.log.warn('mail: platform database not available', { platform: platformId, err: String(e) });
      return undefined;
    }
  }

  /** Sends every due message of one platform, then notes when its next one is due. */
  async #deliver(platformId: string): Promise<void> {
    if (!this.#platforms.live(platformId)) {
      this.#due.delete(platformId);
      return;
    }
    const bp = this.#platforms.blueprintOf(platformId);
    const brand = brandOf(bp);
    const from = bp.identity.email_from ?? this.defaultFrom();
    const log = this.#app.log;
    for (;;) {
      if (this.#stopped) return;
      const lease = this.#app.platformDbs.acquire(platformId);
      try {
        const db = lease.db;
        const msg = claimDueMail(db, this.#app.clock.now());
        if (!msg) {
          const next = nextOutboxDue(db);
          if (next === null) this.#due.delete(platformId);
          else this.#due.set(platformId, next);
          return;
        }
        const attempts = outboxAttempts(db, msg.id);
        try {
          await this.#send(brand, from, msg);
          markMailDelivered(db, msg.id, this.#app.clock.now());
          log.info('mail: sent', { platform: platformId, message: msg.id, template: msg.template, attempts });
        } catch (e) {
          const error = describe(e);
          if (isPermanent(e)) {
            markMailBounced(db, msg.id, error);
            log.warn('mail: bounced (permanent refusal)', { platform: platformId, message: msg.id, error });
          } else {
            const retryAt =
              attempts >= this.#maxAttempts
                ? null
                : this.#app.clock.now() +
                  Math.min(this.#retryBaseMs * 2 ** (attempts - 1), MAIL_DEFAULTS.retryMaxMs);
            const state = markMailRetry(db, msg.id, error, retryAt);
            log.warn(
              state === 'failed' ? 'mail: failed, no attempt left' : 'mail: temporary failure; will retry',
              {
                platform: platformId,
                message: msg.id,
                attempts,
                error,
              },
            );
          }
        }
      } finally {
        lease.release();
      }
    }
  }

  async #send(
    brand: MailBrand,
    from: string,
    msg: Pick<OutboxMessage, 'id' | 'to_email' | 'subject' | 'body'>,
  ): Promise<{ messageId: string; response: string }> {
    const r = renderMail(brand, msg);
    const info = await this.#transport!.sendMail({
      from: { name: brand.name, address: from },
      to: msg.to_email,
      subject: r.subject,
      text: r.text,
      html: r.html,
      attachments: r.attachments,
      messageId: `<${msg.id}@${domainOf(from)}>`,
      // No mailer names itself in the headers (a white-labeled platform's mail never says Soulfra).
      xMailer: false,
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
    return { messageId: info.messageId, response: info.response ?? '' };
  }
}
