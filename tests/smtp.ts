import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A message as the loopback SMTP server received it: the envelope, the raw text and its parse. */
export interface Received {
  from: string;
  to: string[];
  raw: string;
  mail: ParsedMail;
}

/** A real SMTP server on 127.0.0.1 (port chosen at run time) that keeps what it accepts. */
export interface LoopbackSmtp {
  port: number;
  received: Received[];
  /**
   * Replies to give a recipient before accepting (e.g. `[451]`: one temporary refusal, then
   * accept; `[550]`: refused for good while the list lasts). Consumed one per RCPT TO.
   */
  refuse(recipient: string, codes: number[]): void;
  /** RCPT TO commands seen per recipient (accepted or not). */
  attempts(recipient: string): number;
  close(): Promise<void>;
}

/** Starts the loopback SMTP server (no TLS, no auth: the mailer is configured with starttls: never). */
export async function startLoopbackSmtp(): Promise<LoopbackSmtp> {
  const received: Received[] = [];
  const refusals = new Map<string, number[]>();
  const seen = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, cb) {
      const to = address.address.toLowerCase();
      seen.set(to, (seen.get(to) ?? 0) + 1);
      const code = refusals.get(to)?.shift();
      if (code !== undefined) {
        const err = Object.assign(new Error(code >= 500 ? 'mailbox unavailable' : 'try again later'), {
          responseCode: code,
        });
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail = await simpleParser(raw);
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          mail,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    received,
    refuse: (recipient, codes) => refusals.set(recipient.toLowerCase(), [...codes]),
    attempts: (recipient) => seen.get(recipient.toLowerCase()) ?? 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
