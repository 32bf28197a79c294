import type { Database } from 'bun:sqlite';
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import {
  type CacheProvider,
  generateServiceProviderMetadata,
  type Profile,
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
} from '@node-saml/node-saml';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { DOMParser } from '@xmldom/xmldom';
import type { App } from '../../../app/index.ts';
import { safeEqual } from '../../../shared/crypto.ts';
import { AppError, type ErrorDetail, isAppError } from '../../../shared/errors.ts';
import { type SignedIn, ssoSignIn } from '../../accounts/auth.service.ts';
import { PLATFORM_ROLES, type PlatformRole, type UserRow } from '../../accounts/users.repository.ts';
import { provisionSsoUser } from '../../accounts/users.service.ts';
import { readCookie } from '../../sessions/sessions.ts';
import {
  assertMayChangeIdp,
  assertMayMapOwner,
  firstRefusalOf,
  firstReplayOf,
  logAnonymousRefusal,
  mapRoleValues,
  openPending,
  pendingCookieName,
  pendingCookiesToDrop,
  pendingUsed,
  readSsoSettings,
  recordPendingUsed,
  removeSso,
  SSO_PENDING_TTL_MS,
  safeReturnTo,
  sealPending,
  takeSsoStart,
  writeSsoSettings,
} from '../sso.ts';

/** Paths of the SP endpoints on every platform's origin. */
export const SAML_PATHS = {
  metadata: '/sso/saml/metadata',
  login: '/sso/saml/login',
  acs: '/sso/saml/acs',
} as const;

/**
 * Accepted clock difference with the IdP, both ways, on NotBefore / NotOnOrAfter: one minute.
 * Enough for clocks kept by NTP; small enough that an assertion dies soon after its IdP said so.
 */
export const SAML_CLOCK_SKEW_MS = 60_000;
/** How long an AuthnRequest stays answerable (its sealed cookie is valid this long). */
export const SAML_REQUEST_TTL_MS = SSO_PENDING_TTL_MS;
/**
 * The prefix of the cookies that carry SAML sign-ins in flight, sealed: one per AuthnRequest,
 * `sf_saml_<16 hex of SHA-256(request ID)>`, on the SAML paths only, at most SSO_PENDING_PER_BROWSER. Holding it is the browser
 * binding; the server keeps nothing until a validly signed answer arrives.
 */
export const SAML_BROWSER_COOKIE = 'sf_saml';
/** A base64 SAMLResponse larger than this is refused unread. */
const MAX_RESPONSE_CHARS = 512 * 1024;
/** At most this many IdP signing certificates (rollover needs two; a few more for safety). */
const MAX_CERTS = 5;

const FIELDS = [
  'idp_entity_id',
  'idp_sso_url',
  'idp_cert',
  'sign_requests',
  'allow_idp_initiated',
  'email_attribute',
  'name_attribute',
  'role_attribute',
  'role_map',
  'default_role',
  'jit',
  'link_existing_by_email',
  'enabled',
] as const;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** A platform's SAML settings, as an owner or admin sets them. */
export interface SamlSettings {
  idp_entity_id: string;
  idp_sso_url: string;
  /** The IdP's signing certificates (PEM); a signature by any of them is accepted. */
  idp_cert: string[];
  /** Sign AuthnRequests (HTTP-Redirect binding) with the platform's own SP key. */
  sign_requests: boolean;
  /** Accept responses that answer no request of ours (no InResponseTo). */
  allow_idp_initiated: boolean;
  /** Attribute holding the email; null: the `mail`/`email` attribute, else an email-shaped NameID. */
  email_attribute: string | null;
  name_attribute: string | null;
  /** Attribute whose value(s) pick the role; null: roles are not synced from the IdP. */
  role_attribute: string | null;
  /** Attribute value → platform role. */
  role_map: Record<string, PlatformRole>;
  /** The role when the attribute matches nothing in `role_map` (and of new users). */
  default_role: PlatformRole;
  /** Create unknown users at their first sign-in. */
  jit: boolean;
  /**
   * Link a sign-in to an existing account whose email matches (never an owner's, nor a password
   * account with an unconfirmed email). Only an owner turns it on; it goes off when the IdP changes.
   */
  link_existing_by_email: boolean;
  enabled: boolean;
}

/** What is stored: the settings and, once made, the platform's SP key pair (never shown). */
export interface StoredSaml extends SamlSettings {
  sp_private_key?: string;
  sp_cert?: string;
}

/** The settings as clients see them, with what to register at the IdP. */
export interface SamlView extends SamlSettings {
  idp_cert_info: { sha256: string; subject: string; not_after: string }[];
  sp_entity_id: string;
  acs_url: string;
  metadata_url: string;
  login_url: string;
  /** The SP signing certificate (PEM) when requests are signed. */
  sp_cert: string | null;
  updated_at: string;
}

/** The SP's entity ID, ACS URL and login URL on an origin. */
export function samlEndpoints(origin: string): { entityId: string; acsUrl: string; loginUrl: string } {
  return {
    entityId: `${origin}${SAML_PATHS.metadata}`,
    acsUrl: `${origin}${SAML_PATHS.acs}`,
    loginUrl: `${origin}${SAML_PATHS.login}`,
  };
}

/** The stored SAML settings of the platform behind `db`, or null when none are set. */
export function readSaml(db: Database): (StoredSaml & { updated_at: number }) | null {
  return readSsoSettings<StoredSaml>(db, 'saml');
}

/** The client view of stored settings: never the SP private key. */
export function samlView(s: StoredSaml & { updated_at: number }, origin: string): SamlView {
  const { sp_private_key: _key, sp_cert, updated_at, ...settings } = s;
  const ep = samlEndpoints(origin);
  return {
    ...settings,
    // Settings saved before this switch existed have it off.
    link_existing_by_email: settings.link_existing_by_email === true,
    idp_cert_info: s.idp_cert.map((pem) => {
      const x = new X509Certificate(pem);
      return {
        sha256: x.fingerprint256,
        subject: x.subject,
        not_after: new Date(x.validTo).toISOString(),
      };
    }),
    sp_entity_id: ep.entityId,
    acs_url: ep.acsUrl,
    metadata_url: ep.entityId,
    login_url: ep.loginUrl,
    sp_cert: s.sign_requests ? (sp_cert ?? null) : null,
    updated_at: new Date(updated_at).toISOString(),
  };
}

/** A certificate's DER bytes as PEM, 64 characters a line. */
function toPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Reads one pasted value: one or more PEM CERTIFICATE blocks, or one base64 DER certificate.
 * Each must parse as X.509 and hold an RSA key (the XML signature library verifies RSA only).
 */
function parseCertText(text: string, path: string, bad: (p: string, r: string) => void): string[] {
  const out: string[] = [];
  const ders: Buffer[] = [];
  const trimmed = text.trim();
  if (trimmed.includes('-----BEGIN')) {
    const blocks = [...trimmed.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)];
    if (!blocks.length) bad(path, 'is not a PEM certificate');
    for (const b of blocks) {
      if (b[1] !== 'CERTIFICATE') {
        bad(
          path,
          `holds a ${b[1]}, not a CERTIFICATE${b[1]!.includes('PRIVATE') ? ' (never paste a private key)' : ''}`,
        );
        return [];
      }
      const body = b[2]!.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
        bad(path, 'is not valid PEM (bad base64)');
        return [];
      }
      ders.push(Buffer.from(body, 'base64'));
    }
  } else {
    const body = trimmed.replace(/\s+/g, '');
    if (!body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
      bad(path, 'must be a PEM certificate or base64 DER');
      return [];
    }
    ders.push(Buffer.from(body, 'base64'));
  }
  for (const der of ders) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(der);
    } catch {
      bad(path, 'does not parse as an X.509 certificate');
      return [];
    }
    if (x.publicKey.asymmetricKeyType !== 'rsa') {
      bad(path, 'must hold an RSA public key');
      return [];
    }
    out.push(toPem(x.raw));
  }
  return out;
}

function optionalName(v: unknown, path: string, bad: (p: string, r: string) => void): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > 256 || CONTROL.test(v)) {
    bad(path, 'must be an attribute name of 1 to 256 characters');
    return null;
  }
  return v.trim();
}

/** Whether a role is a platform role. */
const isRole = (v: unknown): v is PlatformRole =>
  typeof v === 'string' && (PLATFORM_ROLES as readonly string[]).includes(v);

/**
 * Checks a PUT body field by field; every fault is reported at once, each at its JSON Pointer
 * (400 `sso.saml_invalid`). A certificate that does not parse is refused.
 */
export function validateSamlSettings(body: unknown): SamlSettings {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('sso.saml_invalid', 'the body must be a JSON object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  }
  const b = body as Record<string, unknown>;
  const details: ErrorDetail[] = [];
  const bad = (path: string, reason: string) => details.push({ path, reason });
  for (const k of Object.keys(b)) {
    if (!(FIELDS as readonly string[]).includes(k)) bad(`/${k}`, 'unknown field');
  }

  let idp_entity_id = '';
  if (typeof b.idp_entity_id !== 'string' || b.idp_entity_id.trim().length === 0)
    bad('/idp_entity_id', "required: the IdP's entity ID");
  else if (b.idp_entity_id.length > 1024 || CONTROL.test(b.idp_entity_id))
    bad('/idp_entity_id', 'must be at most 1024 characters, without control characters');
  else idp_entity_id = b.idp_entity_id.trim();

  let idp_sso_url = '';
  if (typeof b.idp_sso_url !== 'string' || b.idp_sso_url.length === 0)
    bad('/idp_sso_url', "required: the IdP's single sign-on URL (HTTP-Redirect binding)");
  else if (b.idp_sso_url.length > 2048) bad('/idp_sso_url', 'must be at most 2048 characters');
  else {
    let u: URL | null = null;
    try {
      u = new URL(b.idp_sso_url);
    } catch {
      bad('/idp_sso_url', 'must be an absolute URL');
    }
    if (u) {
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname)))
        bad('/idp_sso_url', 'must be https (http only for 127.0.0.1 or localhost)');
      else if (u.hash || u.username || u.password)
        bad('/idp_sso_url', 'must have no fragment or credentials');
      else idp_sso_url = u.toString();
    }
  }

  const idp_cert: string[] = [];
  if (typeof b.idp_cert === 'string') idp_cert.push(...parseCertText(b.idp_cert, '/idp_cert', bad));
  else if (Array.isArray(b.idp_cert) && b.idp_cert.length > 0 && b.idp_cert.length <= MAX_CERTS) {
    b.idp_cert.forEach((c, i) => {
      if (typeof c !== 'string' || c.length > 32_768)
        bad(`/idp_cert/${i}`, 'must be a PEM or base64 certificate');
      else idp_cert.push(...parseCertText(c, `/idp_cert/${i}`, bad));
    });
  } else
    bad('/idp_cert', `required: the IdP's signing certificate(s), PEM or base64 DER (1 to ${MAX_CERTS})`);
  if (idp_cert.length > MAX_CERTS) bad('/idp_cert', `at most ${MAX_CERTS} certificates`);

  const email_attribute = optionalName(b.email_attribute, '/email_attribute', bad);
  const name_attribute = optionalName(b.name_attribute, '/name_attribute', bad);
  const role_attribute = optionalName(b.role_attribute, '/role_attribute', bad);

  const role_map: Record<string, PlatformRole> = {};
  if (b.role_map !== undefined && b.role_map !== null) {
    if (typeof b.role_map !== 'object' || Array.isArray(b.role_map))
      bad('/role_map', 'must be an object of attribute value → role');
    else {
      const entries = Object.entries(b.role_map as Record<string, unknown>);
      if (entries.length > 200) bad('/role_map', 'must have at most 200 entries');
      for (const [k, v] of entries) {
        const path = `/role_map/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`;
        if (!k || k.length > 256) bad(path, 'attribute values must be 1 to 256 characters');
        else if (!isRole(v)) bad(path, `must be one of ${PLATFORM_ROLES.join(', ')}`);
        else role_map[k] = v;
      }
      if (entries.length && role_attribute === null) bad('/role_attribute', 'required when role_map is set');
    }
  }

  let default_role: PlatformRole = 'member';
  if (b.default_role !== undefined) {
    if (!isRole(b.default_role)) bad('/default_role', `must be one of ${PLATFORM_ROLES.join(', ')}`);
    else if (b.default_role === 'owner') bad('/default_role', 'cannot be owner');
    else default_role = b.default_role;
  }

  for (const k of [
    'sign_requests',
    'allow_idp_initiated',
    'jit',
    'link_existing_by_email',
    'enabled',
  ] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'boolean') bad(`/${k}`, 'must be true or false');
  }

  if (details.length) {
    throw new AppError(
      'sso.saml_invalid',
      `invalid SAML settings: ${[...new Set(details.map((d) => d.path))].join(', ')}`,
      400,
      details,
    );
  }
  return {
    idp_entity_id,
    idp_sso_url,
    idp_cert,
    sign_requests: b.sign_requests === true,
    allow_idp_initiated: b.allow_idp_initiated === true,
    email_attribute,
    name_attribute,
    role_attribute,
    role_map,
    default_role,
    jit: b.jit !== false,
    link_existing_by_email: b.link_existing_by_email === true,
    enabled: b.enabled !== false,
  };
}

// --- A self-signed certificate for the SP's own key (node:crypto cannot make one) ---

/** sha256WithRSAEncryption (RFC 4055), its parameters NULL. */
const SHA256_WITH_RSA = new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: null });

/**
 * A fresh RSA-2048 key and a self-signed X.509 v3 certificate for it (SHA-256, ten years,
 * subject and issuer `CN=<commonName>` cut to 64 characters), as PEM. SAML peers pin the
 * certificate itself, so no CA is involved. The certificate's structure is built with
 * @peculiar/asn1-x509's RFC 5280 schema (DER by @peculiar/asn1-schema) and signed with
 * node:crypto, so the whole stays synchronous.
 */
export function makeSpKeyPair(commonName: string, now: Date): { privateKey: string; cert: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and not zero-led
  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: '2.5.4.3', // commonName
        value: new AttributeValue({ utf8String: commonName.slice(0, 64) }),
      }),
    ]),
  ]);
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + 10);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(serial).buffer,
    signature: SHA256_WITH_RSA,
    issuer: name,
    // A minute back, for clocks a little behind ours; UTCTime until 2049, GeneralizedTime after.
    validity: new Validity({ notBefore: new Date(now.getTime() - 60_000), notAfter }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(
      publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
  });
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbs)), privateKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: SHA256_WITH_RSA,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cert: toPem(Buffer.from(AsnConvert.serialize(cert))),
  };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/**
 * Validates and saves a platform's SAML settings (full replace). When requests are to be signed
 * and the platform has no SP key yet, one is made now and kept server-side; it survives later
 * saves so the IdP's copy of the SP certificate stays good. Only an owner may map an attribute
 * value to the owner role. Audited as `sso.saml_configured` (certificates by fingerprint).
 */
export function saveSaml(
  app: App,
  db: Database,
  body: unknown,
  by: { actor: string; role: PlatformRole | null; platformSlug: string },
): StoredSaml & { updated_at: number } {
  const s = validateSamlSettings(body);
  const previous = readSaml(db);
  assertMayMapOwner(
    previous && {
      idp: previous.idp_entity_id,
      roleKey: previous.role_attribute,
      roleMap: previous.role_map,
      trust: previous.idp_cert.map(fingerprint),
    },
    {
      idp: s.idp_entity_id,
      roleKey: s.role_attribute,
      roleMap: s.role_map,
      trust: s.idp_cert.map(fingerprint),
    },
    by.role,
    'an attribute value',
  );
  // The same IdP: the same entity ID, trusted through no certificate it did not have before.
  const known = new Set(previous?.idp_cert.map(fingerprint) ?? []);
  const sameIdp =
    previous !== null &&
    previous.idp_entity_id === s.idp_entity_id &&
    s.idp_cert.every((c) => known.has(fingerprint(c)));
  // Where browsers are sent to sign in, and whether it is on at all, belong to the IdP too.
  const sameSignOn =
    previous !== null && previous.idp_sso_url === s.idp_sso_url && !(previous.enabled && !s.enabled);
  assertMayChangeIdp(db, 'saml', sameIdp && sameSignOn, by.role);
  // Left out: kept for the same IdP, off for another.
  if ((body as Record<string, unknown>).link_existing_by_email === undefined)
    s.link_existing_by_email = sameIdp && previous?.link_existing_by_email === true;
  if (
    s.link_existing_by_email &&
    by.role !== null &&
    by.role !== 'owner' &&
    !(sameIdp && previous?.link_existing_by_email === true)
  )
    throw new AppError(
      'auth.forbidden',
      'only an owner can turn on linking existing accounts by email (for this identity provider)',
      403,
      [{ path: '/link_existing_by_email', reason: 'owner only' }],
    );
  const stored: StoredSaml = { ...s };
  if (previous?.sp_private_key && previous.sp_cert) {
    stored.sp_private_key = previous.sp_private_key;
    stored.sp_cert = previous.sp_cert;
  } else if (s.sign_requests) {
    const pair = makeSpKeyPair(`${by.platformSlug} SAML SP`, new Date(app.clock.now()));
    stored.sp_private_key = pair.privateKey;
    stored.sp_cert = pair.cert;
  }
  const now = app.clock.now();
  db.transaction(() => {
    writeSsoSettings(db, 'saml', s.enabled, stored, now);
    const { idp_cert, ...rest } = s;
    app.audit.append(db, {
      actor: by.actor,
      action: 'sso.saml_configured',
      target: 'sso:saml',
      details: {
        ...rest,
        idp_cert_sha256: idp_cert.map(fingerprint),
        sp_cert_sha256: stored.sp_cert ? fingerprint(stored.sp_cert) : null,
      },
    });
  }).immediate();
  return { ...stored, updated_at: now };
}

/**
 * Removes the platform's SAML settings and its sign-ins in flight; false when none were set.
 * Only an owner (or the system: `role` null) removes an IdP an owner signs in through. Audited.
 */
export function removeSaml(app: App, db: Database, actor: string, role: PlatformRole | null = null): boolean {
  return removeSso(app, db, 'saml', actor, role);
}

/**
 * The SP metadata XML for this platform: entity ID, ACS (HTTP-POST), WantAssertionsSigned, and
 * the SP signing certificate when requests are signed. Served whether or not SAML is set up, so
 * an admin can register the SP at the IdP first.
 */
export function samlMetadata(db: Database, origin: string): string {
  const s = readSaml(db);
  const ep = samlEndpoints(origin);
  const signing = s?.sign_requests && s.sp_private_key && s.sp_cert;
  return generateServiceProviderMetadata({
    issuer: ep.entityId,
    callbackUrl: ep.acsUrl,
    identifierFormat: null,
    wantAssertionsSigned: true,
    ...(signing
      ? { privateKey: s.sp_private_key, publicCerts: [s.sp_cert!], signatureAlgorithm: 'sha256' }
      : {}),
  });
}

/** A same-origin relative path from RelayState (at most 512 characters), else '/'. */
export function safeReturnPath(v: unknown): string {
  return safeReturnTo(v, 512);
}

/** What a started SAML sign-in carries, sealed, in its cookie (context `sso:saml:pending`). */
interface SamlPending {
  /** The AuthnRequest's ID (the InResponseTo its answer must carry). */
  id: string;
  /** The AuthnRequest's IssueInstant (node-saml's cache value). */
  instant: string;
  /** The signed-in user who asked to link the returning identity to their account. */
  link_user?: string;
  /** When it stops being answerable (epoch ms). */
  exp: number;
}

/** The name of the cookie that carries the SAML sign-in answering to this request ID. */
export function samlCookieName(requestId: string): string {
  return pendingCookieName(SAML_BROWSER_COOKIE, requestId);
}

/**
 * node-saml's request-ID cache for one request, over nothing shared: at a start it hands the
 * new request's ID and instant to `onSave` (sealed into the cookie by the caller); at the ACS it
 * knows only the request sealed in this browser's cookie (`known`). Nothing is written.
 */
function requestCache(
  app: App,
  known: { id: string; instant: string } | null,
  onSave: (id: string, instant: string) => void = () => {},
): CacheProvider {
  return {
    async saveAsync(key, value) {
      onSave(key, value);
      return { value, createdAt: app.clock.now() };
    },
    async getAsync(key) {
      return known && key === known.id ? known.instant : null;
    },
    async removeAsync(key) {
      return key;
    },
  };
}

/** A node-saml SP for one platform and one request: every check this SP relies on is set here. */
function samlClient(s: StoredSaml, origin: string, cache: CacheProvider): SAML {
  const ep = samlEndpoints(origin);
  return new SAML({
    issuer: ep.entityId,
    callbackUrl: ep.acsUrl,
    audience: ep.entityId,
    entryPoint: s.idp_sso_url,
    idpCert: s.idp_cert,
    // Both the Response and its Assertion must carry a valid signature by a configured cert.
    wantAuthnResponseSigned: true,
    wantAssertionsSigned: true,
    acceptedClockSkewMs: SAML_CLOCK_SKEW_MS,
    validateInResponseTo: s.allow_idp_initiated
      ? ValidateInResponseTo.ifPresent
      : ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: SAML_REQUEST_TTL_MS,
    cacheProvider: cache,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    ...(s.sign_requests && s.sp_private_key
      ? { privateKey: s.sp_private_key, signatureAlgorithm: 'sha256' as const }
      : {}),
  });
}

function activeSaml(db: Database): StoredSaml & { updated_at: number } {
  const s = readSaml(db);
  if (!s?.enabled)
    throw new AppError('sso.saml_not_configured', 'single sign-on with SAML is not set up here', 404);
  return s;
}

/**
 * Starts an SP-initiated sign-in: an AuthnRequest for the HTTP-Redirect binding (signed when
 * the settings say so), the return path (same origin only, else '/') in RelayState, and the
 * request's ID, instant, linking user and a ten-minute expiry sealed into the sign-in's own
 * cookie (returned as `cookie`; see SAML_BROWSER_COOKIE). Nothing is written to the database,
 * so anonymous starts fill and churn nothing shared. With `client`, one address may still
 * start only so many a minute (429 `sso.rate_limited`; it bounds the CPU spent). Returns the
 * IdP URL to send the browser to.
 */
export async function startSamlLogin(
  app: App,
  db: Database,
  req: {
    origin: string;
    returnTo: unknown;
    client?: { scope: string; ip: string | null };
    linkUserId?: string | null;
    /** The browser's Cookie header: its oldest sign-in cookies beyond the bound are named in `drop`. */
    cookies?: string | null;
  },
): Promise<{ url: string; cookie: { name: string; value: string }; drop: string[] }> {
  const s = activeSaml(db);
  if (req.client) takeSsoStart(app, req.client.scope, req.client.ip, app.clock.now());
  let made: { id: string; instant: string } | null = null;
  const cache = requestCache(app, null, (id, instant) => {
    made = { id, instant };
  });
  const url = await samlClient(s, req.origin, cache).getAuthorizeUrlAsync(
    safeReturnPath(req.returnTo),
    undefined,
    {},
  );
  const request = made as { id: string; instant: string } | null;
  if (!request) throw new Error('node-saml made an AuthnRequest without an ID');
  const pending: SamlPending = {
    id: request.id,
    instant: request.instant,
    ...(req.linkUserId ? { link_user: req.linkUserId } : {}),
    exp: app.clock.now() + SAML_REQUEST_TTL_MS,
  };
  return {
    url,
    cookie: { name: samlCookieName(request.id), value: sealPending(db, 'saml', { ...pending }) },
    drop: pendingCookiesToDrop(db, 'saml', SAML_BROWSER_COOKIE, req.cookies ?? null, app.clock.now()),
  };
}

/** A refused response: the reason goes to the audit log, the message to the client. */
class SamlRefusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly status: 400 | 401 = 401,
    readonly detail?: string,
    /** Logged, not audited (a repeat that was audited already). */
    readonly anonymous = false,
  ) {
    super(message);
  }
}

/** Sorts node-saml's error messages into stable reasons. */
function classify(e: unknown): SamlRefusal {
  if (e instanceof SamlStatusError)
    return new SamlRefusal(
      'idp_error',
      'the identity provider did not authenticate the user',
      401,
      e.message,
    );
  const m = e instanceof Error ? e.message : String(e);
  const r = (reason: string, msg: string, status: 400 | 401 = 401) => new SamlRefusal(reason, msg, status, m);
  if (/multiple assertions/i.test(m))
    return r('multiple_assertions', 'the response carries more than one assertion');
  if (/InResponseTo is missing/i.test(m))
    return r('unsolicited', 'the response answers no sign-in started here (IdP-initiated sign-in is off)');
  if (/InResponseTo/i.test(m))
    return r('in_response_to', 'the response answers no pending sign-in from here');
  if (/signature|Referenced node|ID cannot refer|transforms/i.test(m))
    return r(
      'invalid_signature',
      "the response is not signed by the configured identity provider's certificate",
    );
  if (/not yet valid/i.test(m)) return r('not_yet_valid', 'the assertion is not valid yet');
  // node-saml picks a subject confirmation only by its time window; none fits: out of date.
  if (/expired|No valid subject confirmation/i.test(m)) return r('expired', 'the assertion has expired');
  if (/audience|AudienceRestriction/i.test(m))
    return r('audience_mismatch', 'the assertion is meant for another service');
  if (/Missing SAML assertion/i.test(m)) return r('no_assertion', 'the response carries no assertion');
  if (/XML|Non-whitespace|unclosed|attribute|base64|parse|entity/i.test(m))
    return r('malformed', 'the response is not a well-formed SAML message', 400);
  return r('invalid_response', 'the response was refused');
}

// xml2js output, as node-saml gives it for the signed assertion.
type Node = Record<string, unknown>;
const kids = (n: unknown, k: string): Node[] =>
  n && typeof n === 'object' && Array.isArray((n as Node)[k]) ? ((n as Node)[k] as Node[]) : [];
const attrOf = (n: Node | undefined, a: string): string | undefined => {
  const v = (n?.$ as Record<string, unknown> | undefined)?.[a];
  return typeof v === 'string' ? v : undefined;
};
const textOf = (n: Node | undefined): string | undefined => (typeof n?._ === 'string' ? n._ : undefined);

/** The string values of an attribute in the profile (one or many), in document order. */
function attributeValues(profile: Profile, name: string): string[] {
  const attrs = profile.attributes as Record<string, unknown> | undefined;
  if (!attrs || !Object.hasOwn(attrs, name)) return [];
  const v = attrs[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** The role the attribute maps to (see sso.ts). */
function mapRole(s: SamlSettings, values: string[]): PlatformRole {
  return mapRoleValues(s.role_map, s.default_role, values);
}

/**
 * The checks node-saml leaves to its caller, on the parts its signature checks covered: the
 * root's Destination (the whole Response is signed) and the assertion's Issuer, bearer
 * SubjectConfirmation (Recipient = our ACS, NotOnOrAfter set, InResponseTo consistent).
 * Returns the assertion's ID and when it stops being valid (for replay protection).
 */
function checkResponse(
  s: StoredSaml,
  origin: string,
  root: Element,
  profile: Profile,
  nowMs: number,
): { assertionId: string; notOnOrAfter: number } {
  const ep = samlEndpoints(origin);
  const destination = root.getAttribute('Destination');
  if (destination !== ep.acsUrl)
    throw new SamlRefusal(
      'destination_mismatch',
      'the response is addressed to another service',
      401,
      `Destination: ${destination}`,
    );
  const inResponseTo = root.getAttribute('InResponseTo') || null;

  const assertion = (profile.getAssertion?.() as Node | undefined)?.Assertion as Node | undefined;
  if (!assertion) throw new SamlRefusal('no_assertion', 'the response carries no assertion');
  const issuer = textOf(kids(assertion, 'Issuer')[0]);
  if (issuer !== s.idp_entity_id)
    throw new SamlRefusal(
      'issuer_mismatch',
      'the assertion was issued by another identity provider',
      401,
      `Issuer: ${issuer}`,
    );
  for (let n = root.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).localName === 'Issuer') {
      const ri = (n.textContent ?? '').trim();
      if (ri !== s.idp_entity_id)
        throw new SamlRefusal(
          'issuer_mismatch',
          'the response was issued by another identity provider',
          401,
          `Issuer: ${ri}`,
        );
    }
  }
  const assertionId = attrOf(assertion, 'ID');
  if (!assertionId) throw new SamlRefusal('malformed', 'the assertion has no ID', 400);

  const confirmations = kids(kids(assertion, 'Subject')[0], 'SubjectConfirmation')
    .filter((c) => attrOf(c, 'Method') === BEARER)
    .map((c) => kids(c, 'SubjectConfirmationData')[0]);
  const addressed = confirmations.filter((d) => attrOf(d, 'Recipient') === ep.acsUrl);
  if (!addressed.length) {
    throw new SamlRefusal(
      'recipient_mismatch',
      'the assertion is addressed to another service',
      401,
      `Recipient: ${confirmations.map((d) => attrOf(d, 'Recipient')).join(', ')}`,
    );
  }
  const good = addressed.find((d) => {
    const until = Date.parse(attrOf(d, 'NotOnOrAfter') ?? '');
    const answers = attrOf(d, 'InResponseTo') ?? null;
    return Number.isFinite(until) && nowMs - SAML_CLOCK_SKEW_MS < until && answers === inResponseTo;
  });
  if (!good)
    throw new SamlRefusal(
      'subject_confirmation_invalid',
      'the assertion has no valid bearer confirmation for this sign-in',
    );
  const conditionsUntil = Date.parse(attrOf(kids(assertion, 'Conditions')[0], 'NotOnOrAfter') ?? '');
  const until = Math.max(
    Date.parse(attrOf(good, 'NotOnOrAfter')!),
    Number.isFinite(conditionsUntil) ? conditionsUntil : 0,
  );
  return { assertionId, notOnOrAfter: until };
}

/** Refusals of account linking the client sees as they are (the rest are `sso.saml_failed`). */
const PASSED_THROUGH = new Set([
  'sso.account_exists',
  'sso.user_not_provisioned',
  'sso.identity_linked_elsewhere',
]);

/** What the ACS learnt before it refused: whether a sign-in of ours (or the IdP's signature) vouches for the post. */
interface AcsSeen {
  subject?: string;
  email?: string;
  user?: UserRow;
  /** The response answers a request sealed in this browser's cookie (its ID in `request`). */
  known?: boolean;
  /** node-saml accepted the response's signatures. */
  validated?: boolean;
  /** The ID of the request of ours the response names (its InResponseTo). */
  request?: string;
  /** The answer is recorded (request used, assertion ID seen): a retry is a replay. */
  recorded?: boolean;
}

/**
 * Finishes a sign-in at the ACS (HTTP-POST binding). A response naming a request (InResponseTo)
 * must come with the sealed cookie of that very request (the browser binding: its cookie opens
 * only on this platform, for SAML, before its expiry) and the request must not have been
 * answered by a finished sign-in; an unsolicited response is accepted only when IdP-initiated
 * sign-in is on (the documented exception: no browser to bind). node-saml checks the
 * signatures (Response and Assertion, by a configured certificate only; KeyInfo is ignored),
 * InResponseTo, the time window (±1 min) and the audience; then Destination, Issuer and the
 * bearer Recipient are checked here. Only then is anything written: the request ID's hash and
 * the assertion ID, until they expire (a second use is refused, its first replay audited and
 * later ones logged). The account is found, linked or created (see provisionSsoUser) with the
 * mapped role. A refusal of a signed response is audited as `user.sign_in_failed` (via saml,
 * with the reason) once; a refusal tied to this browser's sealed request before the signature
 * is proven is audited once per request (its holder may re-post it); anonymous garbage (no
 * cookie of ours) is only logged, at most once a minute per address. Answered 400/401
 * `sso.saml_failed` (409 `sso.account_exists`, 403 `sso.user_not_provisioned`); no session.
 */
export async function finishSamlLogin(
  app: App,
  db: Database,
  req: {
    origin: string;
    body: unknown;
    ip: string | null;
    userAgent: string | null;
    /** The request's Cookie header (the sign-in's sealed cookie is read from it). */
    cookies: string | null;
    scope?: string;
  },
): Promise<SignedIn & { returnTo: string; requestId: string | null }> {
  const seen: AcsSeen = {};
  try {
    return await acs(app, db, req, seen);
  } catch (e) {
    const pass = isAppError(e) && PASSED_THROUGH.has(e.code);
    const r =
      e instanceof SamlRefusal
        ? e
        : isAppError(e)
          ? new SamlRefusal(pass ? e.code.slice(4) : e.code, e.message, e.status >= 500 ? 400 : 401)
          : new SamlRefusal('internal', 'the sign-in could not be completed', 400);
    if (!(e instanceof SamlRefusal) && !isAppError(e))
      app.log.error('saml acs failed', { err: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    const details = {
      via: 'saml',
      reason: r.reason,
      message: r.message,
      ...(r.detail ? { error: r.detail.slice(0, 300) } : {}),
      ip: req.ip,
      ...(seen.subject ? { subject: seen.subject } : {}),
    };
    // Anyone may re-post what they hold: a refusal is audited once per request of ours (or per
    // signed response), never an entry per post (the rest are logged, rate-limited).
    const scope = req.scope ?? 'saml';
    const now = app.clock.now();
    const form = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
    const audited =
      !(e instanceof SamlRefusal && e.anonymous) &&
      (seen.recorded ||
        (seen.validated &&
          firstRefusalOf(app, scope, 'saml', `response:${String(form.SAMLResponse ?? '')}`, now)) ||
        (seen.known === true &&
          seen.request !== undefined &&
          firstRefusalOf(app, scope, 'saml', seen.request, now)));
    if (audited)
      app.audit.append(db, {
        actor: seen.user ? `user:${seen.user.id}` : 'anonymous',
        action: 'user.sign_in_failed',
        target: seen.user ? `user:${seen.user.id}` : seen.email ? `email:${seen.email}` : 'sso:saml',
        details,
      });
    else logAnonymousRefusal(app, scope, req.ip, details);
    if (pass && isAppError(e)) throw new AppError(e.code, e.message, e.status);
    throw new AppError('sso.saml_failed', `SAML sign-in refused: ${r.message}`, r.status);
  }
}

async function acs(
  app: App,
  db: Database,
  req: Parameters<typeof finishSamlLogin>[2],
  seen: AcsSeen,
): Promise<SignedIn & { returnTo: string; requestId: string | null }> {
  const s = readSaml(db);
  if (!s?.enabled)
    throw new SamlRefusal('not_configured', 'single sign-on with SAML is not set up here', 400);
  const form = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
  const samlResponse = form.SAMLResponse;
  if (typeof samlResponse !== 'string' || samlResponse.length === 0)
    throw new SamlRefusal('malformed', 'the form has no SAMLResponse', 400);
  if (samlResponse.length > MAX_RESPONSE_CHARS || !/^[A-Za-z0-9+/=\s]+$/.test(samlResponse))
    throw new SamlRefusal('malformed', 'SAMLResponse must be base64 of at most 512 KiB', 400);

  // Which request it answers is read first, so that nothing costly (or audited) happens for a
  // post that answers no request sealed in this browser's cookie. The signature covers this root.
  const root = parseRoot(samlResponse);
  if (!root) throw new SamlRefusal('malformed', 'the response is not a well-formed SAML message', 400);
  const answered = root.getAttribute('InResponseTo') || null;
  let pending: SamlPending | null = null;
  if (answered) {
    const opened =
      answered.length > 512
        ? null
        : (openPending(
            db,
            'saml',
            readCookie(req.cookies, samlCookieName(answered)),
          ) as Partial<SamlPending> | null);
    // No cookie of ours for this request (another browser, forged, another platform): anyone
    // can post any request ID, so this is anonymous.
    if (
      !opened ||
      typeof opened.id !== 'string' ||
      !safeEqual(opened.id, answered) ||
      typeof opened.instant !== 'string'
    )
      throw new SamlRefusal(
        'in_response_to',
        'the response answers no pending sign-in started from this browser; start again',
      );
    pending = opened as SamlPending;
    seen.known = true;
    seen.request = answered;
    if (typeof pending.exp !== 'number' || pending.exp <= app.clock.now())
      throw new SamlRefusal('in_response_to', 'the sign-in took too long; start again');
    if (pendingUsed(db, 'saml', answered)) {
      seen.recorded = true;
      throw new SamlRefusal(
        'replayed',
        'this sign-in has been finished already; start again',
        401,
        answered,
        !firstReplayOf(db, 'saml', answered),
      );
    }
  } else if (!s.allow_idp_initiated) {
    throw new SamlRefusal(
      'unsolicited',
      'the response answers no sign-in started here (IdP-initiated sign-in is off)',
    );
  }

  const saml = samlClient(
    s,
    req.origin,
    requestCache(app, pending ? { id: pending.id, instant: pending.instant } : null),
  );
  let profile: Profile | null;
  try {
    ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
  } catch (e) {
    throw classify(e);
  }
  seen.validated = true;
  if (!profile) throw new SamlRefusal('no_assertion', 'the response carries no assertion');
  // The answer is signed by the IdP: the request is used up, whatever follows.
  const now = app.clock.now();
  if (pending && answered) {
    seen.recorded = true;
    if (!recordPendingUsed(db, 'saml', answered, pending.exp, now))
      throw new SamlRefusal(
        'replayed',
        'this sign-in has been finished already; start again',
        401,
        answered,
        !firstReplayOf(db, 'saml', answered),
      );
  }
  const checked = checkResponse(s, req.origin, root, profile, now);

  const subject = typeof profile.nameID === 'string' ? profile.nameID : '';
  if (!subject || subject.length > 1024)
    throw new SamlRefusal('name_id_missing', 'the assertion names no subject');
  seen.subject = subject;

  // One use per assertion, kept until it would have expired anyway (the primary key decides).
  db.query('DELETE FROM saml_assertions_seen WHERE expires_at <= ?').run(now);
  const fresh = db
    .query('INSERT OR IGNORE INTO saml_assertions_seen (assertion_id, expires_at) VALUES (?, ?)')
    .run(checked.assertionId, checked.notOnOrAfter + SAML_CLOCK_SKEW_MS).changes;
  seen.recorded = true;
  if (!fresh)
    throw new SamlRefusal(
      'replayed',
      'this assertion has been used already',
      401,
      checked.assertionId,
      // A replayed assertion (IdP-initiated ones too) is audited once, then only logged.
      db
        .query(
          'UPDATE saml_assertions_seen SET replay_audited = 1 WHERE assertion_id = ? AND replay_audited IS NULL',
        )
        .run(checked.assertionId).changes === 0,
    );

  const emailValue = s.email_attribute
    ? attributeValues(profile, s.email_attribute)[0]
    : (([profile.email, profile.mail].find((v) => typeof v === 'string') as string | undefined) ?? subject);
  const email = (emailValue ?? '').trim().toLowerCase();
  if (!EMAIL_RE.test(email) || email.length > 254)
    throw new SamlRefusal('email_missing', 'the assertion carries no email address');
  seen.email = email;
  const name = s.name_attribute ? attributeValues(profile, s.name_attribute)[0]?.slice(0, 200) : undefined;

  const { user } = provisionSsoUser(
    app,
    db,
    {
      kind: 'saml',
      issuer: s.idp_entity_id,
      subject,
      email,
      ...(name ? { name } : {}),
      // Without a role attribute, roles are not synced: only a new user gets the default role.
      role: s.role_attribute !== null ? mapRole(s, attributeValues(profile, s.role_attribute)) : null,
      defaultRole: s.default_role,
      jit: s.jit,
      linkExistingByEmail: s.link_existing_by_email === true,
      linkUserId: pending?.link_user ?? null,
    },
    seen,
  );
  seen.user = user;
  const signed = ssoSignIn(app, db, user, 'saml', { ip: req.ip, userAgent: req.userAgent });
  return { ...signed, returnTo: safeReturnPath(form.RelayState), requestId: answered };
}

/** The root element of a base64 SAML response, or null when it is not XML. */
function parseRoot(samlResponse: string): Element | null {
  try {
    const doc = new DOMParser({ errorHandler: { warning: () => {}, error: () => {} } }).parseFromString(
      Buffer.from(samlResponse, 'base64').toString('utf8'),
      'text/xml',
    );
    return (doc.documentElement as unknown as Element | null) ?? null;
  } catch {
    return null;
  }
}
