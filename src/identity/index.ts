export {
  issueEmailToken,
  passwordSignIn,
  requestPasswordReset,
  resetPassword,
  type SignedIn,
  ssoSignIn,
  verifyEmail,
} from './accounts/auth.service.ts';
export { acceptInvitation } from './accounts/invitations.ts';
export { onboardingRoutes } from './accounts/onboarding.routes.ts';
export { hashPassword, PASSWORD_COST, passwordCost, verifyPassword } from './accounts/passwords.ts';
export { issueOwnerResetLink } from './accounts/recovery.ts';
export {
  createUserRepository,
  PLATFORM_ROLES,
  type PlatformRole,
  type UserRow,
} from './accounts/users.repository.ts';
export {
  changeRole,
  checkPassword,
  createUser,
  provisionSsoUser,
  setUserActive,
  type UserView,
  userView,
} from './accounts/users.service.ts';
export {
  type ApiKeyView,
  authenticateApiKey,
  createApiKey,
  listApiKeys,
  revokeApiKey,
} from './apikeys/apikeys.ts';
export { type Authenticated, authenticate, keyBucketsOf } from './authenticate.ts';
export type {
  PlatformRef,
  PlatformRequestContext,
} from './context.ts';
export { declaredPermission, PERMISSION_KEY, platformGuard } from './guard.routes.ts';
export { identityRoutes } from './identity.routes.ts';
export { MAIL_DEFAULTS, Mailer, type MailPlatforms, smtpProblem } from './mail/mailer.ts';
export {
  listOutbox,
  MAIL_STATUSES,
  type MailStatus,
  markMailDelivered,
  type OutboxEntry,
  type OutboxMessage,
  queueMail,
  readOutbox,
} from './mail/outbox.ts';
export { brandOf, type MailBrand, renderMail } from './mail/templates.ts';
export { mfaRoutes } from './mfa/mfa.routes.ts';
export {
  disableOperator,
  enableOperator,
  removeOperator,
  setOperatorRole,
} from './operators/operator-accounts.ts';
export {
  enableOperatorTotp,
  finishOperatorMfa,
  type OperatorSignIn,
  operatorPasswordSignIn,
  resetOperatorTotp,
  startOperatorTotp,
} from './operators/operator-password.ts';
export {
  createOperator,
  endOperatorSession,
  finishOperatorOidc,
  listOperators,
  OPERATOR_SESSION_COOKIE,
  type OperatorView,
  resolveOperatorSession,
} from './operators/operator-sso.ts';
export {
  authenticateOperatorToken,
  bootstrapOperator,
  createOperatorToken,
  LOCAL_ROOT,
  listOperatorTokens,
  OPERATOR_ROLES,
  OPERATOR_TOKEN_PREFIX,
  OPERATOR_TOKEN_TTL_MS,
  type OperatorPrincipal,
  type OperatorRole,
  type OperatorTokenInput,
  type OperatorTokenView,
  revokeOperatorToken,
} from './operators/operators.ts';
export {
  actorOf,
  can,
  isScope,
  keyRole,
  type Permission,
  type Principal,
  ROLE_PERMISSIONS,
  roleCan,
  roleOf,
  SCOPES,
  type Scope,
} from './permissions.ts';
export {
  DAY_MS,
  dayOf,
  recordReferralVisit,
  referralCodeOf,
  referralFigures,
  referrerOfRef,
} from './referrals/referrals.ts';
export { scimRoutes } from './scim/scim.routes.ts';
export {
  authenticateScimToken,
  createScimToken,
  revokeScimToken,
  SCIM_TOKEN_PREFIX,
} from './scim/scim-tokens.ts';
export { IDENTITY_SECRET_SITES } from './secret-sites.ts';
export {
  clearedSessionCookie,
  completeMfa,
  createSession,
  destroySession,
  destroyUserSessions,
  readCookie,
  resolveSession,
  SESSION_COOKIE,
  sessionCookie,
} from './sessions/sessions.ts';
export {
  DEFAULT_IDENTITY_SETTINGS,
  type IdentitySettings,
  readIdentitySettings,
  writeIdentitySettings,
} from './settings.ts';
export { type SignInOptions, signInOptions } from './sign-in-options.ts';
export { oidcRoutes } from './sso/oidc/oidc.routes.ts';
export {
  OIDC_BROWSER_COOKIE,
  OIDC_REQUEST_TTL_MS,
  oidcCookie,
  oidcCookieName,
  oidcView,
  readOidc,
  removeOidc,
  saveOidc,
  startOidcLogin,
} from './sso/oidc/oidc.ts';
export { samlRoutes } from './sso/saml/saml.routes.ts';
