export { COMMUNITY_APPROVAL_DEFAULTS, PlatformBlueprint, SubscriptionTier } from './blueprint.models.ts';
export {
  assertBlueprintDepth,
  MAX_BLUEPRINT_DEPTH,
  mergeBlueprintUpdate,
  parseBlueprintText,
  resolveBlueprint,
  TEMPLATES,
  type TemplateName,
  templateBlueprint,
} from './blueprint.ts';
export {
  auditedChanges,
  authorityOf,
  BLUEPRINT_RULES,
  type BlueprintAuthority,
  type BlueprintChange,
  type BlueprintEditor,
  blueprintDiff,
  blueprintRulesMarkdown,
  checkBlueprintChange,
  PACK_LOCKS,
  packLockOf,
} from './blueprint-rules.ts';
export {
  type BrandAsset,
  deleteBrandAssetsExcept,
  getBrandAsset,
  putBrandAsset,
} from './brand-assets.repository.ts';
export { checkLogo, LOCAL_LOGO_RE, localLogoName, MAX_LOGO_BYTES } from './brand-assets.ts';
export {
  blueprintWarnings,
  ENFORCEMENT,
  type InstanceCapabilities,
  type SettingEnforcement,
  type UnenforcedSetting,
  unenforcedSettings,
} from './enforcement.ts';
export type { PlatformHead, PlatformRow, PlatformStatus } from './platforms.repository.ts';
export {
  PLATFORM_DIRS,
  platformFilePlaces,
  RECONCILE_RULES,
  type ReconcileContext,
  type ReconcileReport,
  type ReconcileRule,
  reconcilePlatformFiles,
} from './reconcile.ts';
export { PlatformRegistry } from './registry.ts';
export { insertSettingOnce, settingValue } from './settings.repository.ts';
export { domainUrl, type InstanceSettings, platformUrl } from './settings.ts';
export { checkDomain, checkSlug, RESERVED_SLUGS } from './slug.ts';
export {
  type BlueprintUpdate,
  createTenancy,
  DEFAULT_SLUG_GRACE_DAYS,
  type HostTarget,
  type PlatformDeleted,
  type PlatformView,
  type Tenancy,
} from './tenancy.service.ts';
