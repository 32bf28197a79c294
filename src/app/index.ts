export { type App, type OpenAppOptions, openApp } from './app.ts';
export type { AuditEntry, AuditInput, AuditPort } from './audit-port.ts';
export { DEFAULT_CONFIG, InstanceConfig, readConfigFile, resolveConfig, validateConfig } from './config.ts';
export { type DataDirLock, dataDirPaths, lockDataDir, sweepTemporaryFiles } from './datadir.ts';
export { type DomainEvents, EventBus, type EventName } from './events.ts';
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
