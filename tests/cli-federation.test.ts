import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { runCli, tempDir } from './helpers.ts';

// `soulfra federation key` and `soulfra platform trust add|list|remove` (issue 12 item 8), with
// no server running (the CLI takes the lock and opens the data dir itself).

describe('soulfra federation key, soulfra platform trust', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  const sf = (...args: string[]) => runCli([...args, '--data', data]);
  beforeAll(async () => {
    expect((await sf('platform', 'create', 'acme', '--template', 'creator')).code).toBe(0);
  });
  afterAll(() => t.cleanup());

  test('the key is made once and reads the same each time, readable and --json', async () => {
    const first = await sf('federation', 'key', '--json');
    expect(first.code).toBe(0);
    const k = (JSON.parse(first.stdout) as { key: { key_id: string; public_key: string } }).key;
    expect(k.key_id).toMatch(/^ed25519:[0-9a-f]{32}$/);
    const human = await sf('federation', 'key');
    expect(human.stdout).toContain(`key id      ${k.key_id}`);
    expect(human.stdout).toContain(k.public_key);
  });

  test('trust add (the key id checked), list, remove', async () => {
    const pub = generateKeyPairSync('ed25519')
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64');
    const wrong = await sf('platform', 'trust', 'add', 'acme', pub, '--key-id', 'ed25519:0000', '--json');
    expect(wrong.code).toBe(2);
    expect(JSON.parse(wrong.stdout).error.code).toBe('federation.key_invalid');
    const add = await sf('platform', 'trust', 'add', 'acme', pub, '--label', 'peer one', '--json');
    expect(add.code).toBe(0);
    const keyId = (JSON.parse(add.stdout) as { trusted_key: { key_id: string } }).trusted_key.key_id;
    const list = await sf('platform', 'trust', 'list', 'acme', '--json');
    expect(
      (JSON.parse(list.stdout) as { trusted_keys: { key_id: string; label: string }[] }).trusted_keys,
    ).toEqual([expect.objectContaining({ key_id: keyId, label: 'peer one' })]);
    expect((await sf('platform', 'trust', 'remove', 'acme', keyId)).stdout).toContain(
      `no longer trusts ${keyId}`,
    );
    expect((await sf('platform', 'trust', 'list', 'acme')).stdout).toContain('(no keys');
    expect((await sf('platform', 'trust', 'remove', 'acme', keyId)).code).toBe(1);
  });
});
