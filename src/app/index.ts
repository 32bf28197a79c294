export {
  type AdmissionHooks,
  type AdmissionKind,
  admit,
  admitFeatures,
  admitted,
  setAdmissionHooks,
} from './admission.ts';
export { type App, type OpenAppOptions, openApp } from './app.ts';
export type { AuditEntry, AuditInput, AuditPort } from './audit-port.ts';
export { type AuditFilter, type AuditPage, parseAuditQuery, searchAudit } from './audit-search.repository.ts';
export { DEFAULT_CONFIG, InstanceConfig, readConfigFile, resolveConfig, validateConfig } from './config.ts';
export {
  currentLibcHost,
  type DataDirLock,
  dataDirPaths,
  type FlockFn,
  type FlockLoader,
  type LibcHost,
  libcCandidates,
  lockDataDir,
  resolveFlock,
  sweepTemporaryFiles,
} from './datadir.ts';
export {
  type AnyEvent,
  appendEvent,
  type DomainEvents,
  EVENT_VERSIONS,
  EventDispatcher,
  type EventHandler,
  type EventName,
  type EventOf,
  type EventSource,
  type PlatformSource,
  TEST_EVENT_FILE_ENV,
  TEST_EXIT_AFTER_COMMIT_ENV,
  type UsageRecordedV2,
} from './events.ts';
export {
  createHttp1Client,
  HTTP1_DEFAULT_MAX_BODY_BYTES,
  HTTP1_DEFAULT_MAX_HEADER_BYTES,
  type Http1Client,
  type Http1Fetch,
  type Http1FetchInit,
  type Http1Options,
} from './http1.ts';
export {
  bindSecrets,
  type DbSecrets,
  defaultMasterKeyFile,
  isSealed,
  Keyring,
  MASTER_KEY_ENV,
  type MasterKeyExport,
  type MasterKeySource,
  parseMasterKey,
  SEALED_PREFIX,
  type SecretBox,
  type SecretSite,
  secretContext,
  secretsOf,
} from './keyring.ts';
export { type Component, Lifecycle, type StopFailure } from './lifecycle.ts';
export { createLogger, type Logger, type LogLevel, silentLogger } from './logger.ts';
export { AppState, bindState, type StateKey, stateKey, stateOf } from './state.ts';
