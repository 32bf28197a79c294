export {
  type CreatePlatformInput,
  type CreatePlatformResult,
  createPlatform,
  type PlatformSettingsReport,
  settingsReport,
} from './create-platform.ts';
export { type Instance, openInstance } from './instance.ts';
export {
  type DataKeyRotation,
  exportMasterKey,
  type MasterKeyRotation,
  rotateDataKey,
  rotateMasterKey,
} from './keys.ts';
export {
  type AuditVerifyReport,
  type ChainReport,
  createOperatorActions,
  type OperatorActions,
} from './operator-actions.ts';
