export { type App, type OpenAppOptions, openApp } from './app.ts';
export type { AuditEntry, AuditInput, AuditPort } from './audit-port.ts';
export { DEFAULT_CONFIG, InstanceConfig, readConfigFile, resolveConfig, validateConfig } from './config.ts';
export { type DataDirLock, dataDirPaths, lockDataDir, sweepTemporaryFiles } from './datadir.ts';
export { type DomainEvents, EventBus, type EventName } from './events.ts';
export { createLogger, type Logger, type LogLevel, silentLogger } from './logger.ts';
