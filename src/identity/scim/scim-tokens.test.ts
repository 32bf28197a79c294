import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../../tests/helpers.ts';
import type { Instance } from '../../flows/index.ts';
import { authenticateScimToken, createScimToken, revokeScimToken } from './scim-tokens.ts';

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
const now = Date.UTC(2026, 10, 26, 12);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('scim-tokens', () => now));
});
afterAll(() => cleanup());

describe('SCIM token revocation', () => {
  test('the revocation and its audit entry commit together: an audit that fails leaves the token live', async () => {
    await inst.app.platformDbs.use(platformId, (db) => {
      const { id, token } = createScimToken(inst.app, db, 'Okta', 'usr_owner');
      const append = inst.app.audit.append;
      inst.app.audit.append = (d, input) => {
        if (input.action === 'scim_token.revoked') throw new Error('audit write failed');
        return append.call(inst.app.audit, d, input);
      };
      try {
        expect(() => revokeScimToken(inst.app, db, id, 'usr_owner')).toThrow('audit write failed');
      } finally {
        inst.app.audit.append = append;
      }
      // Not revoked without its audit entry: the token still authenticates.
      expect(authenticateScimToken(db, token, now)).toEqual({ kind: 'scim', tokenId: id });
      const revokedAudits = () =>
        db
          .query<{ n: number }, []>("SELECT count(*) AS n FROM audit_log WHERE action = 'scim_token.revoked'")
          .get()!.n;
      expect(revokedAudits()).toBe(0);

      revokeScimToken(inst.app, db, id, 'usr_owner');
      expect(authenticateScimToken(db, token, now)).toBeNull();
      expect(revokedAudits()).toBe(1);
      // A second revocation is 404 and writes nothing.
      expect(() => revokeScimToken(inst.app, db, id, 'usr_owner')).toThrow('no live SCIM token');
      expect(revokedAudits()).toBe(1);
    });
  });
});
