export { PlatformBlueprint } from './blueprint.models.ts';
export {
  assertBlueprintDepth,
  MAX_BLUEPRINT_DEPTH,
  parseBlueprintText,
  resolveBlueprint,
  TEMPLATES,
  type TemplateName,
  templateBlueprint,
} from './blueprint.ts';
export {
  blueprintWarnings,
  ENFORCEMENT,
  type InstanceCapabilities,
  type SettingEnforcement,
  type UnenforcedSetting,
  unenforcedSettings,
} from './enforcement.ts';
export type { PlatformHead, PlatformRow, PlatformStatus } from './platforms.repository.ts';
export { PlatformRegistry } from './registry.ts';
export { domainUrl, type InstanceSettings, platformUrl } from './settings.ts';
export { checkDomain, checkSlug, RESERVED_SLUGS } from './slug.ts';
export {
  createTenancy,
  type HostTarget,
  type PlatformView,
  type Tenancy,
} from './tenancy.service.ts';
