export { type App, type OpenAppOptions, openApp } from './app.ts';
export type { AuditEntry, AuditInput, AuditPort } from './audit-port.ts';
export { DEFAULT_CONFIG, InstanceConfig, readConfigFile, resolveConfig, validateConfig } from './config.ts';
export { type DataDirLock, dataDirPaths, lockDataDir, sweepTemporaryFiles } from './datadir.ts';
export {
  type AnyEvent,
  appendEvent,
  type DomainEvents,
  EVENT_VERSIONS,
  EventBus,
  EventDispatcher,
  type EventHandler,
  type EventName,
  type EventOf,
  type EventSource,
  type PlatformSource,
  TEST_EVENT_FILE_ENV,
  TEST_EXIT_AFTER_COMMIT_ENV,
  type UsageRecordedV1,
} from './events.ts';
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
export { createLogger, type Logger, type LogLevel, silentLogger } from './logger.ts';
