export { openAuditAnchoring, type PlatformChainFile } from './anchoring.ts';
export {
  type AuditAnchoring,
  type ChainVerdict,
  createAuditLog,
  entryHash,
  GENESIS_HASH,
  verifyChain,
} from './chain.ts';
export {
  AUDIT_SECRET_SITE,
  type AuditSigner,
  fingerprintOf,
  openAuditSigner,
  publicKeyCopyPath,
  readPublicKeyCopy,
  SIGNING_KEY_CONTEXT,
  type VerifyKey,
} from './signing.ts';
export {
  type AnchoredVerdict,
  type KeyReport,
  verifyControlAudit,
  verifyKey,
  verifyPlatformAudit,
} from './verify.ts';
