export { type ChainVerdict, createAuditLog, entryHash, GENESIS_HASH, verifyChain } from './chain.ts';
