import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { type AppError, isAppError } from '../shared/errors.ts';
import { DEFAULT_CONFIG, readConfigFile, resolveConfig, validateConfig } from './config.ts';

describe('instance configuration', () => {
  test('the example file is valid', async () => {
    const c = resolveConfig(await readConfigFile(join(import.meta.dir, '../../examples/soulfra.yaml')), {});
    expect(c.providers.map((p) => p.id)).toEqual(['local', 'cloud', 'claude']);
    expect(c.models.find((m) => m.alias === 'default')?.route).toEqual([
      'local/llama3.2',
      'cloud/gpt-4o-mini',
    ]);
  });

  test('flags override the file; the file overrides the defaults', () => {
    const c = resolveConfig({ port: 9000, base_domain: 'ai.example.com' }, { port: 9100, host: undefined });
    expect([c.port, c.base_domain, c.host]).toEqual([9100, 'ai.example.com', '127.0.0.1']);
  });

  test('outbound.allow takes IPv4 and IPv6 CIDRs; without it nothing non-public is open', () => {
    const c = resolveConfig({ outbound: { allow: ['127.0.0.1/32', '10.20.0.0/16', 'fd00:1::/32'] } }, {});
    expect(c.outbound?.allow).toEqual(['127.0.0.1/32', '10.20.0.0/16', 'fd00:1::/32']);
    expect(resolveConfig({}, {}).outbound).toBeUndefined();
  });

  test('mail: SMTP settings with the password named by an environment variable, never in the file', () => {
    const c = resolveConfig(
      {
        mail: {
          from: 'noreply@ai.example.com',
          smtp: {
            host: 'smtp.example.com',
            port: 587,
            starttls: 'required',
            auth: { user: 'u', pass_env: 'SMTP_PASSWORD' },
          },
        },
      },
      {},
    );
    expect(c.mail?.smtp?.auth).toEqual({ user: 'u', pass_env: 'SMTP_PASSWORD' });
    expect(resolveConfig({}, {}).mail).toBeUndefined();
  });

  const bad: [string, Record<string, unknown>, string[]][] = [
    ['unknown key', { prot: 1 }, ['/prot']],
    [
      'an SMTP password in the file',
      { mail: { smtp: { host: 'h', port: 25, auth: { user: 'u', pass: 'secret' } } } },
      ['/mail/smtp/auth/pass', '/mail/smtp/auth/pass_env'],
    ],
    ['bad starttls', { mail: { smtp: { host: 'h', port: 25, starttls: 'yes' } } }, ['/mail/smtp/starttls']],
    ['bad port', { port: 70000 }, ['/port']],
    ['bad provider kind', { providers: [{ id: 'x', kind: 'gemini' }] }, ['/providers/0/kind']],
    [
      'duplicate provider and a route to nowhere',
      {
        providers: [
          { id: 'a', kind: 'ollama' },
          { id: 'a', kind: 'ollama' },
        ],
        models: [{ alias: 'm', route: ['b/x'] }],
      },
      ['/models/0/route/0', '/providers/1/id'],
    ],
    ['onnx without a folder', { providers: [{ id: 'o', kind: 'onnx' }] }, ['/providers/0/models_dir']],
    [
      'a price for an unknown provider',
      { prices: { 'zz/m': { input: 1, output: 1, currency: 'usd' } } },
      ['/prices/zz~1m'],
    ],
    [
      'outbound.allow: a bare address (no prefix)',
      { outbound: { allow: ['127.0.0.1'] } },
      ['/outbound/allow/0'],
    ],
    [
      'outbound.allow: bits past the prefix, a bad prefix, a name, a bad IPv6',
      { outbound: { allow: ['10.0.0.0/8', '10.1.0.0/8', '::1/129', 'localhost/32', 'fe80::1::2/64'] } },
      ['/outbound/allow/1', '/outbound/allow/2', '/outbound/allow/3', '/outbound/allow/4'],
    ],
    ['outbound: an unknown key', { outbound: { allow: [], deny: [] } }, ['/outbound/deny']],
    [
      'trusted_proxies: a bare address, a name, bits past the prefix',
      { trusted_proxies: ['127.0.0.1/32', '10.0.0.1', 'proxy.local/32', '10.1.0.0/8'] },
      ['/trusted_proxies/1', '/trusted_proxies/2', '/trusted_proxies/3'],
    ],
  ];
  for (const [name, file, paths] of bad) {
    test(`invalid: ${name} → every bad key named`, () => {
      let err: unknown;
      try {
        resolveConfig(file, {});
      } catch (e) {
        err = e;
      }
      expect(isAppError(err) && err.code).toBe('config.invalid');
      expect(((err as { details: { path: string }[] }).details ?? []).map((d) => d.path).sort()).toEqual(
        paths,
      );
    });
  }
});

test('config errors come from the one validation mapper: JSON Pointer paths, readable reasons, did-you-mean', () => {
  const errorOf = (v: unknown) => {
    try {
      validateConfig(v, 'soulfra.yaml');
    } catch (e) {
      return e as AppError;
    }
    throw new Error('accepted');
  };
  const typo = errorOf({ ...DEFAULT_CONFIG, prot: 1 });
  expect(typo.code).toBe('config.invalid');
  expect(typo.details).toEqual([{ path: '/prot', reason: "unknown field (did you mean 'port'?)" }]);
  expect(typo.message).toBe("soulfra.yaml is invalid: /prot (unknown field (did you mean 'port'?))");
  expect(errorOf({ ...DEFAULT_CONFIG, port: 'x' }).details).toEqual([
    { path: '/port', reason: "must be an integer, got 'x'" },
  ]);
  expect(errorOf({ ...DEFAULT_CONFIG, outbound: { allow: [3] } }).details).toEqual([
    { path: '/outbound/allow/0', reason: 'must be a string, got 3' },
  ]);
});
