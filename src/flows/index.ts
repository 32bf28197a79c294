export { type CreatePlatformInput, type CreatePlatformResult, createPlatform } from './create-platform.ts';
export { type Instance, openInstance } from './instance.ts';
export { type ChainReport, createOperatorActions, type OperatorActions } from './operator-actions.ts';
