import type { Database } from 'bun:sqlite';
import { type App, admit, admitted } from '../../app/index.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { createUserRepository, type UserRow } from '../accounts/users.repository.ts';
import { checkPassword, recordEmailChange, setUserActive } from '../accounts/users.service.ts';
import { readIdentitySettings } from '../settings.ts';
import {
  allGroups,
  changeGroupMembers,
  deleteGroupRow,
  type GroupRow,
  groupById,
  groupIdByName,
  groupMemberRows,
  insertGroup,
  scimTokenRows,
  updateGroup,
  userGroupRows,
} from './scim.repository.ts';

/*
 * SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol) for identity providers such as Okta and
 * Entra ID: mapping users and groups to SCIM resources, the filter and path language, PATCH
 * operations, and the static discovery documents. Plain functions over a platform database;
 * the routes (scim.routes.ts) turn requests into calls here.
 *
 * Mapping: userName is the user's email (stored lowercase, compared case-insensitively);
 * `emails` is derived from it and read-only; displayName is the `name` column; name.givenName
 * and name.familyName have columns of their own. Attributes the platform does not store
 * (phoneNumbers, title, the enterprise extension, ...) are accepted and ignored, so an IdP's
 * default attribute mappings never fail a provisioning run; the Schemas document lists what
 * is kept. New users get the role `member`.
 */

/** Schema URNs. */
export const SCIM = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

/** The most resources one list answer holds (ServiceProviderConfig `filter.maxResults`). */
export const SCIM_MAX_RESULTS = 200;
/** The page size when the client sends no `count`. */
const DEFAULT_COUNT = 100;
const MAX_FILTER_LENGTH = 2_000;
const MAX_FILTER_DEPTH = 16;
const MAX_OPERATIONS = 1_000;

// ---------------------------------------------------------------------------------------------
// Errors

/** RFC 7644 §3.12 scimType values. */
const SCIM_TYPES = new Set([
  'invalidFilter',
  'tooMany',
  'uniqueness',
  'mutability',
  'invalidSyntax',
  'invalidPath',
  'noTarget',
  'invalidValue',
  'invalidVers',
  'sensitive',
]);

/** A SCIM error: thrown as an AppError whose code `scim.<scimType>` carries the scimType. */
export function scimError(status: number, scimType: string | null, detail: string): AppError {
  return new AppError(scimType ? `scim.${scimType}` : 'scim.error', detail, status);
}

const notFound = (type: 'User' | 'Group', id: string) =>
  new AppError('scim.not_found', `no ${type} with id ${id}`, 404);

/** The SCIM error envelope (RFC 7644 §3.12). */
export interface ScimErrorBody {
  schemas: [typeof SCIM.error];
  status: string;
  scimType?: string;
  detail: string;
}

/**
 * The SCIM error envelope for an error the server rendered in the contract's shape: the
 * scimType comes from a `scim.<scimType>` code, or from the few platform codes that mean one
 * (a taken email is `uniqueness`; other 400s are `invalidValue`).
 */
export function scimErrorBody(status: number, code: string, message: string): ScimErrorBody {
  let scimType: string | undefined;
  if (code.startsWith('scim.') && SCIM_TYPES.has(code.slice(5))) scimType = code.slice(5);
  else if (code === 'user.email_taken' || code === 'user.external_id_taken') scimType = 'uniqueness';
  else if (code === 'request.invalid_json') scimType = 'invalidSyntax';
  else if (status === 400) scimType = 'invalidValue';
  return {
    schemas: [SCIM.error],
    status: String(status),
    ...(scimType ? { scimType } : {}),
    detail: message,
  };
}

// ---------------------------------------------------------------------------------------------
// SCIM tokens (listing; creation and revocation live in scim-tokens.ts)

/** What admins see of a SCIM token (never its secret). */
export interface ScimTokenView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** Every SCIM token of the platform, newest first, revoked ones included (with `revoked_at`). */
export function listScimTokens(db: Database): ScimTokenView[] {
  return scimTokenRows(db).map((r) => ({
    id: r.id,
    name: r.name,
    created_at: iso(r.created_at),
    last_used_at: r.last_used_at === null ? null : iso(r.last_used_at),
    revoked_at: r.revoked_at === null ? null : iso(r.revoked_at),
  }));
}

/** One SCIM token's view, or null. */
export function scimTokenView(db: Database, id: string): ScimTokenView | null {
  return listScimTokens(db).find((t) => t.id === id) ?? null;
}

// ---------------------------------------------------------------------------------------------
// Filters and paths (RFC 7644 §3.4.2.2, §3.5.2)

/** A path into a resource: `userName`, `name.givenName`, `emails[type eq "work"].value`. */
export interface ScimPath {
  /** Top-level attribute, lowercased, core schema URN removed (an extension URN stays whole). */
  attr: string;
  /** Sub-attribute, lowercased. */
  sub?: string;
  /** A value filter on the elements of a multi-valued attribute. */
  where?: ScimFilter;
}

type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
const COMPARE_OPS = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

/** A parsed filter. `has` is a bare value path (`members[value eq "x"]`): some element matches. */
export type ScimFilter =
  | { kind: 'and' | 'or'; left: ScimFilter; right: ScimFilter }
  | { kind: 'not'; filter: ScimFilter }
  | { kind: 'pr'; path: ScimPath }
  | { kind: 'has'; path: ScimPath }
  | { kind: 'cmp'; path: ScimPath; op: CompareOp; value: string | number | boolean | null };

type Token = { t: '(' | ')' | '[' | ']' } | { t: 'word'; v: string } | { t: 'str'; v: string };

const CORE_URNS = [SCIM.user, SCIM.group].map((u) => `${u.toLowerCase()}:`);

function tokenize(s: string, fail: (m: string) => AppError): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === '[' || ch === ']') {
      out.push({ t: ch as '(' | ')' | '[' | ']' });
      i++;
    } else if (ch === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= s.length) throw fail(`unterminated string at offset ${i}`);
      try {
        out.push({ t: 'str', v: JSON.parse(s.slice(i, j + 1)) as string });
      } catch {
        throw fail(`bad string at offset ${i}`);
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < s.length && !/[\s()[\]"]/.test(s[j]!)) j++;
      out.push({ t: 'word', v: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** An attribute path word → attr and sub, lowercased, with a core schema URN removed. */
function splitAttr(word: string, fail: (m: string) => AppError): { attr: string; sub?: string } {
  const lower = word.toLowerCase();
  const core = CORE_URNS.find((u) => lower.startsWith(u));
  if (!core && lower.startsWith('urn:')) return { attr: lower };
  const rest = core ? lower.slice(core.length) : lower;
  const m = /^([a-z$][\w$-]*)(?:\.([a-z$][\w$-]*))?$/.exec(rest);
  if (!m) throw fail(`"${word}" is not an attribute path`);
  return m[2] ? { attr: m[1]!, sub: m[2] } : { attr: m[1]! };
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly toks: Token[],
    private readonly fail: (m: string) => AppError,
  ) {}

  private peek(): Token | undefined {
    return this.toks[this.pos];
  }
  private peekWord(): string | null {
    const t = this.peek();
    return t?.t === 'word' ? t.v.toLowerCase() : null;
  }
  private expect(t: '(' | ')' | '[' | ']'): void {
    if (this.peek()?.t !== t) throw this.fail(`expected "${t}"`);
    this.pos++;
  }
  done(): boolean {
    return this.pos >= this.toks.length;
  }

  filter(): ScimFilter {
    if (++this.depth > MAX_FILTER_DEPTH) throw this.fail('the filter nests too deeply');
    let left = this.and();
    while (this.peekWord() === 'or') {
      this.pos++;
      left = { kind: 'or', left, right: this.and() };
    }
    this.depth--;
    return left;
  }
  private and(): ScimFilter {
    let left = this.atom();
    while (this.peekWord() === 'and') {
      this.pos++;
      left = { kind: 'and', left, right: this.atom() };
    }
    return left;
  }
  private atom(): ScimFilter {
    const t = this.peek();
    if (!t) throw this.fail('the filter ends too soon');
    if (t.t === '(') {
      this.pos++;
      const f = this.filter();
      this.expect(')');
      return f;
    }
    if (t.t !== 'word') throw this.fail('expected an attribute path');
    if (t.v.toLowerCase() === 'not' && this.toks[this.pos + 1]?.t === '(') {
      this.pos += 2;
      const f = this.filter();
      this.expect(')');
      return { kind: 'not', filter: f };
    }
    const path = this.path();
    const op = this.peekWord();
    if (path.where && (op === null || (op !== 'pr' && !COMPARE_OPS.has(op)))) return { kind: 'has', path };
    if (op === null) throw this.fail('expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)');
    this.pos++;
    if (op === 'pr') return { kind: 'pr', path };
    if (!COMPARE_OPS.has(op)) throw this.fail(`unknown operator "${op}"`);
    const v = this.peek();
    this.pos++;
    let value: string | number | boolean | null;
    if (v?.t === 'str') value = v.v;
    else if (v?.t === 'word' && ['true', 'false', 'null'].includes(v.v.toLowerCase()))
      value = v.v.toLowerCase() === 'null' ? null : v.v.toLowerCase() === 'true';
    else if (v?.t === 'word' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v.v)) value = Number(v.v);
    else throw this.fail(`expected a value after "${op}" (a "string", a number, true, false or null)`);
    if ((typeof value === 'boolean' || value === null) && op !== 'eq' && op !== 'ne')
      throw this.fail(`"${op}" needs a string or a number`);
    return { kind: 'cmp', path, op: op as CompareOp, value };
  }

  /** attrPath, or attrPath "[" filter "]" [ "." subAttr ]. */
  path(): ScimPath {
    const t = this.peek();
    if (t?.t !== 'word') throw this.fail('expected an attribute path');
    this.pos++;
    const path: ScimPath = splitAttr(t.v, this.fail);
    if (this.peek()?.t === '[') {
      if (path.sub) throw this.fail('a value filter goes on a top-level attribute');
      this.pos++;
      path.where = this.filter();
      this.expect(']');
      const next = this.peek();
      if (next?.t === 'word' && next.v.startsWith('.')) {
        this.pos++;
        const m = /^\.([a-z$][\w$-]*)$/i.exec(next.v);
        if (!m) throw this.fail(`"${next.v}" is not a sub-attribute`);
        path.sub = m[1]!.toLowerCase();
      }
    }
    return path;
  }
}

/** Parses a `filter` query parameter; 400 invalidFilter when it is not one. */
export function parseFilter(s: string): ScimFilter {
  const fail = (m: string) => scimError(400, 'invalidFilter', `invalid filter: ${m}`);
  if (s.length > MAX_FILTER_LENGTH) throw fail(`longer than ${MAX_FILTER_LENGTH} characters`);
  const p = new Parser(tokenize(s, fail), fail);
  const f = p.filter();
  if (!p.done()) throw fail('unexpected text after the filter');
  return f;
}

/** Parses a PATCH operation's `path`; 400 invalidPath when it is not one. */
export function parsePath(s: string): ScimPath {
  const fail = (m: string) => scimError(400, 'invalidPath', `invalid path "${s}": ${m}`);
  if (s.length > MAX_FILTER_LENGTH) throw fail('too long');
  const p = new Parser(tokenize(s, fail), fail);
  const path = p.path();
  if (!p.done()) throw fail('unexpected text after the path');
  return path;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A key of an object, matched case-insensitively (SCIM attribute names are). */
function getCI(o: Json, key: string): unknown {
  const k = Object.keys(o).find((x) => x.toLowerCase() === key);
  return k === undefined ? undefined : o[k];
}

/** The values a path reaches in a resource (several for multi-valued attributes). */
function valuesAt(resource: Json, path: ScimPath): unknown[] {
  const v = getCI(resource, path.attr);
  if (v === undefined || v === null) return [];
  let items = Array.isArray(v) ? v : [v];
  if (path.where) {
    const where = path.where;
    items = items.filter((it) => isObject(it) && matches(where, it));
  }
  const out = items.map((it) => {
    if (path.sub) return isObject(it) ? getCI(it, path.sub) : undefined;
    // A multi-valued complex attribute compares by its `value` sub-attribute.
    return isObject(it) && Array.isArray(v) ? getCI(it, 'value') : it;
  });
  return out.filter((x) => x !== undefined && x !== null);
}

function compare(a: unknown, op: CompareOp, b: string | number | boolean, caseExact: boolean): boolean {
  if (typeof b === 'boolean') return typeof a === 'boolean' && (op === 'eq' ? a === b : a !== b);
  if (typeof b === 'number') {
    if (typeof a !== 'number') return false;
    return {
      eq: a === b,
      ne: a !== b,
      gt: a > b,
      ge: a >= b,
      lt: a < b,
      le: a <= b,
      co: false,
      sw: false,
      ew: false,
    }[op];
  }
  if (typeof a !== 'string') return false;
  const x = caseExact ? a : a.toLowerCase();
  const y = caseExact ? b : b.toLowerCase();
  switch (op) {
    case 'eq':
      return x === y;
    case 'ne':
      return x !== y;
    case 'co':
      return x.includes(y);
    case 'sw':
      return x.startsWith(y);
    case 'ew':
      return x.endsWith(y);
    case 'gt':
      return x > y;
    case 'ge':
      return x >= y;
    case 'lt':
      return x < y;
    case 'le':
      return x <= y;
  }
}

/** Whether a resource (or an element of a multi-valued attribute) matches a filter. */
export function matches(f: ScimFilter, resource: Json): boolean {
  switch (f.kind) {
    case 'and':
      return matches(f.left, resource) && matches(f.right, resource);
    case 'or':
      return matches(f.left, resource) || matches(f.right, resource);
    case 'not':
      return !matches(f.filter, resource);
    case 'pr':
    case 'has':
      return valuesAt(resource, f.path).some((v) => v !== '' && !(Array.isArray(v) && v.length === 0));
    case 'cmp': {
      const values = valuesAt(resource, f.path);
      if (f.value === null) return f.op === 'eq' ? values.length === 0 : values.length > 0;
      // id and externalId are case-exact (RFC 7643 §3.1); the rest of what we keep is not.
      const caseExact = !f.path.sub && (f.path.attr === 'id' || f.path.attr === 'externalid');
      const value = f.value;
      if (f.op === 'ne') return !values.some((v) => compare(v, 'eq', value, caseExact));
      return values.some((v) => compare(v, f.op, value, caseExact));
    }
  }
}

function mentions(f: ScimFilter, attr: string): boolean {
  switch (f.kind) {
    case 'and':
    case 'or':
      return mentions(f.left, attr) || mentions(f.right, attr);
    case 'not':
      return mentions(f.filter, attr);
    default:
      return f.path.attr === attr;
  }
}

// ---------------------------------------------------------------------------------------------
// Resources

/** What a service call needs: the platform's database, the App, its public origin, the actor. */
export interface ScimContext {
  app: App;
  db: Database;
  /** scheme://host[:port] of the platform, for `meta.location`. */
  origin: string;
  /** `scim:<tokenId>`, written to the audit log. */
  actor: string;
}

/** A SCIM resource as sent to clients. */
export type ScimResource = Json & { id: string };

const joinName = (given: string | null | undefined, family: string | null | undefined) =>
  [given, family].filter((x) => x).join(' ');

const locationOf = (origin: string, type: 'Users' | 'Groups', id: string) =>
  `${origin}/scim/v2/${type}/${id}`;

/** A user as a SCIM User resource; `withGroups` adds the read-only `groups` attribute. */
export function userResource(db: Database, u: UserRow, origin: string, withGroups = true): ScimResource {
  const name: Json = {};
  const formatted = u.name || joinName(u.given_name, u.family_name);
  if (formatted) name.formatted = formatted;
  if (u.given_name) name.givenName = u.given_name;
  if (u.family_name) name.familyName = u.family_name;
  const r: ScimResource = {
    schemas: [SCIM.user],
    id: u.id,
    ...(u.external_id ? { externalId: u.external_id } : {}),
    userName: u.email,
    ...(Object.keys(name).length ? { name } : {}),
    ...(u.name ? { displayName: u.name } : {}),
    emails: [{ value: u.email, type: 'work', primary: true }],
    active: u.status === 'active',
  };
  if (withGroups) {
    r.groups = userGroupRows(db, u.id).map((g) => ({
      value: g.id,
      display: g.display_name,
      $ref: locationOf(origin, 'Groups', g.id),
      type: 'direct',
    }));
  }
  r.meta = {
    resourceType: 'User',
    created: iso(u.created_at),
    lastModified: iso(u.updated_at),
    location: locationOf(origin, 'Users', u.id),
  };
  return r;
}

function groupMembers(db: Database, groupId: string): { id: string; email: string; name: string }[] {
  return groupMemberRows(db, groupId);
}

/** A group as a SCIM Group resource; `withMembers` false leaves `members` out. */
export function groupResource(db: Database, g: GroupRow, origin: string, withMembers = true): ScimResource {
  const r: ScimResource = {
    schemas: [SCIM.group],
    id: g.id,
    ...(g.external_id ? { externalId: g.external_id } : {}),
    displayName: g.display_name,
  };
  if (withMembers) {
    r.members = groupMembers(db, g.id).map((m) => ({
      value: m.id,
      display: m.name || m.email,
      $ref: locationOf(origin, 'Users', m.id),
      type: 'User',
    }));
  }
  r.meta = {
    resourceType: 'Group',
    created: iso(g.created_at),
    lastModified: iso(g.updated_at),
    location: locationOf(origin, 'Groups', g.id),
  };
  return r;
}

/** `attributes` / `excludedAttributes` query parameters, comma-separated attribute paths. */
export interface Projection {
  attributes?: string | undefined;
  excludedAttributes?: string | undefined;
}

/**
 * Applies `attributes` (only these, plus id and schemas) or `excludedAttributes` (all but
 * these; id and schemas stay) to a resource, to one sub-attribute level.
 */
export function project(r: ScimResource, p: Projection): ScimResource {
  const list = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => splitAttr(x, (m) => scimError(400, 'invalidValue', `invalid attribute list: ${m}`)));
  const keyOf = (o: Json, attr: string) => Object.keys(o).find((k) => k.toLowerCase() === attr);
  const only = list(p.attributes);
  if (only.length) {
    const out: ScimResource = { schemas: r.schemas, id: r.id };
    for (const a of only) {
      const k = keyOf(r, a.attr);
      if (!k) continue;
      const v = r[k];
      if (!a.sub) out[k] = v;
      else if (isObject(v)) {
        const sk = keyOf(v, a.sub);
        if (sk) out[k] = { ...(isObject(out[k]) ? out[k] : {}), [sk]: v[sk] };
      }
    }
    return out;
  }
  const out: ScimResource = { ...r };
  for (const a of list(p.excludedAttributes)) {
    const k = keyOf(out, a.attr);
    if (!k || k === 'id' || k === 'schemas') continue;
    if (!a.sub) delete out[k];
    else if (isObject(out[k])) {
      const v = { ...(out[k] as Json) };
      const sk = keyOf(v, a.sub);
      if (sk) delete v[sk];
      out[k] = v;
    }
  }
  return out;
}

/** Paging query parameters, as sent. */
export interface ListQuery extends Projection {
  filter?: string | undefined;
  startIndex?: string | undefined;
  count?: string | undefined;
}

/** A ListResponse envelope. */
export interface ListResponse {
  schemas: [typeof SCIM.listResponse];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: ScimResource[];
}

function paging(q: ListQuery): { start: number; count: number } {
  const int = (s: string | undefined, name: string, dflt: number) => {
    if (s === undefined || s === '') return dflt;
    if (!/^-?\d+$/.test(s)) throw scimError(400, 'invalidValue', `${name} must be an integer`);
    return Number.parseInt(s, 10);
  };
  // RFC 7644 §3.4.2.4: startIndex below 1 means 1; a negative count means 0.
  const start = Math.max(1, int(q.startIndex, 'startIndex', 1));
  const count = Math.min(SCIM_MAX_RESULTS, Math.max(0, int(q.count, 'count', DEFAULT_COUNT)));
  return { start, count };
}

function listResponse(all: ScimResource[], total: number, start: number, p: Projection): ListResponse {
  return {
    schemas: [SCIM.listResponse],
    totalResults: total,
    startIndex: start,
    itemsPerPage: all.length,
    Resources: all.map((r) => project(r, p)),
  };
}

// ---------------------------------------------------------------------------------------------
// Input checks

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

function checkUserName(v: unknown): string {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  if (!EMAIL_RE.test(s) || s.length > 254)
    throw scimError(400, 'invalidValue', 'userName must be an email address (the user signs in with it)');
  return s;
}

function checkText(v: unknown, attr: string, max: number): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > max)
    throw scimError(400, 'invalidValue', `${attr} must be a string of at most ${max} characters`);
  return v === '' ? null : v;
}

/** A boolean, also as the strings "True"/"False" that Entra ID sends. */
function checkBool(v: unknown, attr: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw scimError(400, 'invalidValue', `${attr} must be true or false`);
}

/** Reads a JSON request body sent as text; 400 invalidSyntax unless it is a JSON object. */
export function jsonBody(text: unknown): Json {
  if (isObject(text)) return text;
  if (typeof text !== 'string' || text.trim() === '')
    throw scimError(400, 'invalidSyntax', 'the request body must be a JSON object (application/scim+json)');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw scimError(400, 'invalidSyntax', 'the request body is not valid JSON');
  }
  if (!isObject(v)) throw scimError(400, 'invalidSyntax', 'the request body must be a JSON object');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Users

/** The SCIM-writable state of a user, as PUT and PATCH edit it. */
interface UserDraft {
  email: string;
  externalId: string | null;
  givenName: string | null;
  familyName: string | null;
  /** An explicit displayName (the `name` column); null: derived from the name parts. */
  displayName: string | null;
  formatted: string | null;
  active: boolean;
}

function draftOf(u: UserRow): UserDraft {
  const derived = u.name === '' || u.name === joinName(u.given_name, u.family_name);
  return {
    email: u.email,
    externalId: u.external_id ?? null,
    givenName: u.given_name ?? null,
    familyName: u.family_name ?? null,
    displayName: derived ? null : u.name,
    formatted: null,
    active: u.status === 'active',
  };
}

const nameOf = (d: UserDraft) => d.displayName ?? d.formatted ?? joinName(d.givenName, d.familyName);

function setNamePart(d: UserDraft, sub: string, v: unknown): void {
  if (sub === 'givenname') d.givenName = checkText(v, 'name.givenName', 200);
  else if (sub === 'familyname') d.familyName = checkText(v, 'name.familyName', 200);
  else if (sub === 'formatted') d.formatted = checkText(v, 'name.formatted', 200);
  // middleName, honorificPrefix, ...: not kept.
}

const noPasswordChange = () =>
  scimError(
    400,
    'mutability',
    'password changes are not supported (changePassword: false); users reset their own',
  );

/**
 * Sets one attribute of a user draft; `v` null removes it. Read-only attributes (id, meta,
 * groups, emails) and attributes the platform does not keep are ignored.
 */
function setUserAttr(d: UserDraft, p: ScimPath, v: unknown): void {
  const single = (attr: string) => {
    if (p.where) throw scimError(400, 'invalidPath', `${attr} is not multi-valued`);
  };
  switch (p.attr) {
    case 'username':
      single('userName');
      if (v === null) throw scimError(400, 'mutability', 'userName is required and cannot be removed');
      d.email = checkUserName(v);
      return;
    case 'externalid':
      single('externalId');
      d.externalId = checkText(v, 'externalId', 255);
      return;
    case 'displayname':
      single('displayName');
      d.displayName = checkText(v, 'displayName', 200);
      return;
    case 'name':
      single('name');
      if (p.sub) {
        setNamePart(d, p.sub, v);
        return;
      }
      if (v === null) {
        d.givenName = d.familyName = d.formatted = null;
        return;
      }
      if (!isObject(v)) throw scimError(400, 'invalidValue', 'name must be an object');
      for (const [k, x] of Object.entries(v)) setNamePart(d, k.toLowerCase(), x);
      return;
    case 'active':
      single('active');
      if (v === null) throw scimError(400, 'mutability', 'active cannot be removed; set it to false');
      d.active = checkBool(v, 'active');
      return;
    case 'password':
      throw noPasswordChange();
    default:
      return;
  }
}

/** A full User resource (POST, PUT) → draft; `base` supplies what PUT keeps when absent. */
function draftFromResource(body: Json, base: UserDraft | null): UserDraft {
  const d: UserDraft = base
    ? { ...base, givenName: null, familyName: null, displayName: null, formatted: null }
    : {
        email: '',
        externalId: null,
        givenName: null,
        familyName: null,
        displayName: null,
        formatted: null,
        active: true,
      };
  if (getCI(body, 'username') === undefined)
    throw scimError(400, 'invalidValue', 'userName is required (the user signs in with it)');
  for (const [k, v] of Object.entries(body)) {
    const lower = k.toLowerCase();
    if (lower === 'password' || lower === 'schemas') continue;
    // A resource's keys are attribute names (or extension URNs, ignored): no paths here.
    setUserAttr(d, { attr: lower.startsWith(CORE_URNS[0]!) ? lower.slice(CORE_URNS[0]!.length) : lower }, v);
  }
  return d;
}

function assertUnique(db: Database, d: UserDraft, selfId: string | null): void {
  const users = createUserRepository({ db });
  const byEmail = users.byEmail(d.email);
  if (byEmail && byEmail.id !== selfId)
    throw scimError(409, 'uniqueness', `a user with userName ${d.email} exists`);
  if (d.externalId !== null) {
    const byExt = users.byExternalId(d.externalId);
    if (byExt && byExt.id !== selfId)
      throw scimError(409, 'uniqueness', 'a user with this externalId exists');
  }
}

function userRowOr404(db: Database, id: string): UserRow {
  const u = createUserRepository({ db }).byId(id);
  if (!u) throw notFound('User', id);
  return u;
}

/** Users narrowed by an indexed equality in the filter (userName, emails, externalId, id), or null. */
function userCandidates(db: Database, f: ScimFilter): UserRow[] | null {
  if (f.kind === 'and') return userCandidates(db, f.left) ?? userCandidates(db, f.right);
  if (f.kind !== 'cmp' || f.op !== 'eq' || typeof f.value !== 'string') return null;
  const { attr, sub, where } = f.path;
  const users = createUserRepository({ db });
  const q = (col: 'email' | 'external_id' | 'id') => users.where(col, f.value as string);
  if (attr === 'username' && !sub && !where) return q('email');
  if (attr === 'emails' && (!sub || sub === 'value')) return q('email');
  if (attr === 'externalid' && !sub && !where) return q('external_id');
  if (attr === 'id' && !sub && !where) return q('id');
  return null;
}

/** GET /Users: filtered, paged, oldest first. */
export function listUsers(c: ScimContext, q: ListQuery): ListResponse {
  const { start, count } = paging(q);
  const users = createUserRepository({ db: c.db });
  if (!q.filter) {
    const total = users.count();
    const rows = users.page(count, start - 1);
    return listResponse(
      rows.map((u) => userResource(c.db, u, c.origin)),
      total,
      start,
      q,
    );
  }
  const f = parseFilter(q.filter);
  const rows = (userCandidates(c.db, f) ?? users.all()).sort(
    (a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1),
  );
  const withGroups = mentions(f, 'groups');
  const hits = rows.filter((u) => matches(f, userResource(c.db, u, c.origin, withGroups)));
  const page = hits.slice(start - 1, start - 1 + count).map((u) => userResource(c.db, u, c.origin));
  return listResponse(page, hits.length, start, q);
}

/** GET /Users/:id. */
export function getUser(c: ScimContext, id: string, p: Projection = {}): ScimResource {
  return project(userResource(c.db, userRowOr404(c.db, id), c.origin), p);
}

/**
 * POST /Users: a new member. A `password` (Okta's password push) is checked against the
 * platform's policy and hashed; without one the user signs in through SSO or a reset link.
 * `active: false` creates the account disabled. Audited as `scim.user_created`.
 */
export async function createScimUser(c: ScimContext, input: unknown): Promise<ScimResource> {
  const body = jsonBody(input);
  const d = draftFromResource(body, null);
  const pw = getCI(body, 'password');
  let hash: string | null = null;
  if (pw !== undefined && pw !== null) {
    try {
      hash = await hashPassword(c.app, checkPassword(pw));
    } catch (e) {
      throw scimError(400, 'invalidValue', e instanceof Error ? e.message : 'invalid password');
    }
  }
  // A platform held over its operator plan's limits takes no new accounts (402).
  admit(c.db, 'user');
  const id = newId('usr');
  const now = c.app.clock.now();
  c.db
    .transaction(() => {
      assertUnique(c.db, d, null);
      createUserRepository({ db: c.db }).insert({
        id,
        email: d.email,
        name: nameOf(d),
        password_hash: hash,
        role: 'member',
        status: d.active ? 'active' : 'disabled',
        email_verified_at: null,
        created_at: now,
        updated_at: now,
        external_id: d.externalId,
        given_name: d.givenName,
        family_name: d.familyName,
        // The account links on its first SSO sign-in (provisionSsoUser).
        provisioned_via: 'scim',
      });
      c.app.audit.append(c.db, {
        actor: c.actor,
        action: 'scim.user_created',
        target: `user:${id}`,
        details: { email: d.email, external_id: d.externalId, active: d.active, role: 'member' },
      });
    })
    .immediate();
  admitted(c.db, 'user');
  return getUser(c, id);
}

/**
 * Writes a draft over a user, in one transaction: changed columns (`scim.user_updated`), then
 * the active flag through setUserActive, so a deactivation ends the user's sessions and
 * revokes their API keys in the same commit (`scim.user_deactivated` / `scim.user_activated`).
 */
function saveUser(c: ScimContext, u: UserRow, d: UserDraft): ScimResource {
  const next = {
    email: d.email,
    name: nameOf(d),
    external_id: d.externalId,
    given_name: d.givenName,
    family_name: d.familyName,
  };
  const before = {
    email: u.email,
    name: u.name,
    external_id: u.external_id ?? null,
    given_name: u.given_name ?? null,
    family_name: u.family_name ?? null,
  };
  const changed = (Object.keys(next) as (keyof typeof next)[]).filter((k) => next[k] !== before[k]);
  const wasActive = u.status === 'active';
  // An IdP re-sending an owner unchanged is fine; changing one needs the owner's grant.
  if (changed.length || d.active !== wasActive)
    guardOwner(c, u, d.active !== wasActive ? 'deactivate' : 'change');
  c.db
    .transaction(() => {
      if (changed.length) {
        assertUnique(c.db, d, u.id);
        createUserRepository({ db: c.db }).update(
          u.id,
          Object.fromEntries(changed.map((k) => [k, next[k]])),
          c.app.clock.now(),
        );
        c.app.audit.append(c.db, {
          actor: c.actor,
          action: 'scim.user_updated',
          target: `user:${u.id}`,
          details: {
            fields: changed,
            ...(changed.includes('email') ? { email: { from: u.email, to: d.email } } : {}),
          },
        });
        // A new address is unconfirmed, and links sent for the old one are spent (issue 8).
        if (changed.includes('email'))
          recordEmailChange(c.app, c.db, u.id, { from: u.email, to: d.email }, c.actor);
      }
      if (d.active !== wasActive) {
        setUserActive(c.app, c.db, u.id, d.active, c.actor);
        c.app.audit.append(c.db, {
          actor: c.actor,
          action: d.active ? 'scim.user_activated' : 'scim.user_deactivated',
          target: `user:${u.id}`,
        });
      }
    })
    .immediate();
  return getUser(c, u.id);
}

/**
 * Owners are managed by owners: a SCIM client may not change, deactivate or delete an owner
 * account (403 `scim.owner_protected`) unless an owner has turned on the identity setting
 * `scim_manages_owners`. SCIM never grants roles (new users are members; groups map no role).
 */
function guardOwner(c: ScimContext, u: UserRow, what: 'change' | 'deactivate' | 'delete'): void {
  if (u.role !== 'owner' || readIdentitySettings(c.db).scim_manages_owners) return;
  throw new AppError(
    'scim.owner_protected',
    `a SCIM client may not ${what} an owner account; an owner can allow it with the identity setting scim_manages_owners`,
    403,
  );
}

/** PUT /Users/:id: replaces the user's SCIM attributes (externalId and active kept when absent). */
export function replaceUser(c: ScimContext, id: string, input: unknown): ScimResource {
  const body = jsonBody(input);
  const u = userRowOr404(c.db, id);
  if (getCI(body, 'password') !== undefined) throw noPasswordChange();
  return saveUser(c, u, draftFromResource(body, draftOf(u)));
}

/** A PATCH request's operations, checked for shape. */
function operationsOf(
  input: unknown,
): { op: 'add' | 'replace' | 'remove'; path?: string; value?: unknown }[] {
  const body = jsonBody(input);
  const ops = getCI(body, 'operations');
  if (!Array.isArray(ops) || ops.length === 0)
    throw scimError(400, 'invalidSyntax', 'a PATCH body needs a non-empty Operations list');
  if (ops.length > MAX_OPERATIONS)
    throw scimError(400, 'invalidSyntax', `at most ${MAX_OPERATIONS} operations per request`);
  return ops.map((o, i) => {
    if (!isObject(o)) throw scimError(400, 'invalidSyntax', `Operations[${i}] must be an object`);
    const op = getCI(o, 'op');
    const kind = typeof op === 'string' ? op.toLowerCase() : '';
    if (kind !== 'add' && kind !== 'replace' && kind !== 'remove')
      throw scimError(400, 'invalidSyntax', `Operations[${i}].op must be add, replace or remove`);
    const path = getCI(o, 'path');
    if (path !== undefined && (typeof path !== 'string' || path.trim() === ''))
      throw scimError(400, 'invalidPath', `Operations[${i}].path must be a non-empty string`);
    return { op: kind, ...(path === undefined ? {} : { path: path.trim() }), value: getCI(o, 'value') };
  });
}

/**
 * PATCH /Users/:id: add/replace/remove, with a path (`active`, `name.givenName`,
 * `emails[type eq "work"].value`, ...) or without one (a value object such as Okta's
 * `{ active: false }`); op names in any case, booleans also as "True"/"False".
 */
export function patchUser(c: ScimContext, id: string, input: unknown): ScimResource {
  const ops = operationsOf(input);
  const u = userRowOr404(c.db, id);
  const d = draftOf(u);
  for (const o of ops) {
    if (o.path === undefined) {
      if (o.op === 'remove') throw scimError(400, 'noTarget', 'a remove operation needs a path');
      if (!isObject(o.value)) throw scimError(400, 'invalidValue', 'without a path, value must be an object');
      for (const [k, v] of Object.entries(o.value)) {
        setUserAttr(d, parsePath(k), v);
      }
    } else {
      const p = parsePath(o.path);
      if (o.op === 'remove') setUserAttr(d, p, null);
      else {
        if (o.value === undefined) throw scimError(400, 'invalidValue', `${o.op} ${o.path} needs a value`);
        setUserAttr(d, p, o.value);
      }
    }
  }
  return saveUser(c, u, d);
}

/**
 * DELETE /Users/:id: the user goes, and with them (by cascade) their sessions, API keys and
 * group memberships. The last active owner cannot be deleted. Audited as `scim.user_deleted`.
 */
export function deleteUser(c: ScimContext, id: string): void {
  c.db
    .transaction(() => {
      const u = userRowOr404(c.db, id);
      guardOwner(c, u, 'delete');
      if (u.role === 'owner' && u.status === 'active') {
        if (createUserRepository({ db: c.db }).activeOwners() <= 1)
          throw new AppError('user.last_owner', 'the last active owner cannot be deleted', 409);
      }
      createUserRepository({ db: c.db }).delete(id);
      c.app.audit.append(c.db, {
        actor: c.actor,
        action: 'scim.user_deleted',
        target: `user:${id}`,
        details: { email: u.email, external_id: u.external_id ?? null },
      });
    })
    .immediate();
}

// ---------------------------------------------------------------------------------------------
// Groups

interface GroupDraft {
  displayName: string;
  externalId: string | null;
  members: string[];
}

function groupRowOr404(db: Database, id: string): GroupRow {
  const g = groupById(db, id);
  if (!g) throw notFound('Group', id);
  return g;
}

function checkDisplayName(v: unknown): string {
  const s = typeof v === 'string' ? v.trim() : '';
  if (s.length < 1 || s.length > 200)
    throw scimError(400, 'invalidValue', 'displayName must be 1 to 200 characters');
  return s;
}

/** Member ids out of a `members` value: `[{ value: "usr_..." }, ...]` (one object also accepted). */
function memberIds(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return items.map((it, i) => {
    const id = isObject(it) ? getCI(it, 'value') : undefined;
    if (typeof id !== 'string' || id === '')
      throw scimError(400, 'invalidValue', `members[${i}] needs a value: the id of a User`);
    return id;
  });
}

function addMembers(d: GroupDraft, ids: string[]): void {
  for (const id of ids) if (!d.members.includes(id)) d.members.push(id);
}

/** Sets one attribute of a group draft (`op` decides whether members are added or replaced). */
function setGroupAttr(d: GroupDraft, p: ScimPath, v: unknown, op: 'add' | 'replace'): void {
  switch (p.attr) {
    case 'displayname':
      d.displayName = checkDisplayName(v);
      return;
    case 'externalid':
      d.externalId = checkText(v, 'externalId', 255);
      return;
    case 'members':
      if (p.where || p.sub)
        throw scimError(400, 'invalidPath', `${op} takes the path "members", without a filter`);
      if (op === 'replace') d.members = [];
      addMembers(d, memberIds(v));
      return;
    default:
      // id, schemas, meta (read-only; Okta echoes id) and attributes not kept.
      return;
  }
}

function removeGroupAttr(d: GroupDraft, p: ScimPath, v: unknown): void {
  switch (p.attr) {
    case 'displayname':
      throw scimError(400, 'mutability', 'displayName is required and cannot be removed');
    case 'externalid':
      d.externalId = null;
      return;
    case 'members': {
      if (p.where) {
        // members[value eq "usr_..."]: the members the filter picks go (none picked: nothing to do).
        const where = p.where;
        d.members = d.members.filter((id) => !matches(where, { value: id, type: 'User' }));
      } else if (v === undefined || v === null) {
        d.members = [];
      } else {
        // Entra's form: path "members" with the members to remove as the value.
        const gone = new Set(memberIds(v));
        d.members = d.members.filter((id) => !gone.has(id));
      }
      return;
    }
    default:
      return;
  }
}

function draftGroupFromResource(body: Json, base: GroupRow | null): GroupDraft {
  const d: GroupDraft = {
    displayName: checkDisplayName(getCI(body, 'displayname')),
    externalId: base?.external_id ?? null,
    members: [],
  };
  const ext = getCI(body, 'externalid');
  if (ext !== undefined) d.externalId = checkText(ext, 'externalId', 255);
  addMembers(d, memberIds(getCI(body, 'members')));
  return d;
}

/**
 * Writes a group draft: the row (inserted when `existing` is null) and its members, in one
 * transaction, after checking the name is free and every member is a user of this platform.
 */
function saveGroup(c: ScimContext, existing: GroupRow | null, d: GroupDraft): string {
  const id = existing?.id ?? newId('grp');
  c.db
    .transaction(() => {
      const clash = groupIdByName(c.db, d.displayName);
      if (clash !== null && clash !== id)
        throw scimError(409, 'uniqueness', `a group named ${JSON.stringify(d.displayName)} exists`);
      const users = createUserRepository({ db: c.db });
      const unknown = d.members.filter((m) => !users.byId(m));
      if (unknown.length)
        throw scimError(
          400,
          'invalidValue',
          `members must be users of this platform; unknown: ${unknown.join(', ')}`,
        );
      const before = existing ? groupMembers(c.db, id).map((m) => m.id) : [];
      const added = d.members.filter((m) => !before.includes(m));
      const removed = before.filter((m) => !d.members.includes(m));
      const now = c.app.clock.now();
      const renamed = existing !== null && existing.display_name !== d.displayName;
      const extChanged = existing !== null && (existing.external_id ?? null) !== d.externalId;
      if (existing && !renamed && !extChanged && !added.length && !removed.length) return;
      if (existing) updateGroup(c.db, id, { display_name: d.displayName, external_id: d.externalId }, now);
      else
        insertGroup(c.db, {
          id,
          display_name: d.displayName,
          external_id: d.externalId,
          created_at: now,
          updated_at: now,
        });
      changeGroupMembers(c.db, id, added, removed);
      c.app.audit.append(c.db, {
        actor: c.actor,
        action: existing ? 'scim.group_updated' : 'scim.group_created',
        target: `group:${id}`,
        details: {
          display_name: d.displayName,
          ...(renamed ? { renamed_from: existing.display_name } : {}),
          ...(extChanged ? { external_id: d.externalId } : {}),
          ...(added.length ? { members_added: added } : {}),
          ...(removed.length ? { members_removed: removed } : {}),
        },
      });
    })
    .immediate();
  return id;
}

/** GET /Groups: filtered (e.g. `displayName eq "x"`), paged, oldest first. */
export function listGroups(c: ScimContext, q: ListQuery): ListResponse {
  const { start, count } = paging(q);
  const f = q.filter ? parseFilter(q.filter) : null;
  const rows = allGroups(c.db);
  const withMembers = f !== null && mentions(f, 'members');
  const hits = f ? rows.filter((g) => matches(f, groupResource(c.db, g, c.origin, withMembers))) : rows;
  const excludesMembers = (q.excludedAttributes ?? '')
    .split(',')
    .some((a) => a.trim().toLowerCase() === 'members');
  const page = hits
    .slice(start - 1, start - 1 + count)
    .map((g) => groupResource(c.db, g, c.origin, !excludesMembers));
  return listResponse(page, hits.length, start, q);
}

/** GET /Groups/:id. */
export function getGroup(c: ScimContext, id: string, p: Projection = {}): ScimResource {
  return project(groupResource(c.db, groupRowOr404(c.db, id), c.origin), p);
}

/** POST /Groups: `{ displayName, externalId?, members? }`. Audited as `scim.group_created`. */
export function createGroup(c: ScimContext, input: unknown): ScimResource {
  const id = saveGroup(c, null, draftGroupFromResource(jsonBody(input), null));
  return getGroup(c, id);
}

/** PUT /Groups/:id: displayName and members replaced (no members: none); externalId kept when absent. */
export function replaceGroup(c: ScimContext, id: string, input: unknown): ScimResource {
  const body = jsonBody(input);
  const g = groupRowOr404(c.db, id);
  saveGroup(c, g, draftGroupFromResource(body, g));
  return getGroup(c, id);
}

/**
 * PATCH /Groups/:id: rename, and members added (`add` path `members`), replaced, or removed
 * (path `members[value eq "id"]`, or path `members` with the members as the value).
 */
export function patchGroup(c: ScimContext, id: string, input: unknown): ScimResource {
  const ops = operationsOf(input);
  const g = groupRowOr404(c.db, id);
  const d: GroupDraft = {
    displayName: g.display_name,
    externalId: g.external_id,
    members: groupMembers(c.db, id).map((m) => m.id),
  };
  for (const o of ops) {
    if (o.path === undefined) {
      if (o.op === 'remove') throw scimError(400, 'noTarget', 'a remove operation needs a path');
      if (!isObject(o.value)) throw scimError(400, 'invalidValue', 'without a path, value must be an object');
      const op = o.op;
      for (const [k, v] of Object.entries(o.value)) setGroupAttr(d, parsePath(k), v, op);
    } else {
      const p = parsePath(o.path);
      if (o.op === 'remove') removeGroupAttr(d, p, o.value);
      else {
        if (o.value === undefined) throw scimError(400, 'invalidValue', `${o.op} ${o.path} needs a value`);
        setGroupAttr(d, p, o.value, o.op);
      }
    }
  }
  saveGroup(c, g, d);
  return getGroup(c, id);
}

/** DELETE /Groups/:id (memberships go by cascade; the users stay). Audited. */
export function deleteGroup(c: ScimContext, id: string): void {
  c.db
    .transaction(() => {
      const g = groupRowOr404(c.db, id);
      deleteGroupRow(c.db, id);
      c.app.audit.append(c.db, {
        actor: c.actor,
        action: 'scim.group_deleted',
        target: `group:${id}`,
        details: { display_name: g.display_name },
      });
    })
    .immediate();
}

// ---------------------------------------------------------------------------------------------
// Discovery documents (RFC 7644 §4): static, and truthful about what is supported.

/** GET /ServiceProviderConfig. */
export function serviceProviderConfig(origin: string): Json {
  return {
    schemas: [SCIM.serviceProviderConfig],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: SCIM_MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description:
          'A SCIM token made by a platform admin (POST /api/v1/scim/tokens), sent as Authorization: Bearer sfscim_...',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${origin}/scim/v2/ServiceProviderConfig` },
  };
}

const RESOURCE_TYPES = [
  {
    id: 'User',
    endpoint: '/Users',
    description: 'A person who can sign in to the platform',
    schema: SCIM.user,
  },
  { id: 'Group', endpoint: '/Groups', description: 'A named set of users', schema: SCIM.group },
] as const;

/** The resource types (GET /ResourceTypes lists them; /ResourceTypes/:id is one). */
export function resourceTypes(origin: string): ScimResource[] {
  return RESOURCE_TYPES.map((t) => ({
    schemas: [SCIM.resourceType],
    id: t.id,
    name: t.id,
    endpoint: t.endpoint,
    description: t.description,
    schema: t.schema,
    schemaExtensions: [],
    meta: { resourceType: 'ResourceType', location: `${origin}/scim/v2/ResourceTypes/${t.id}` },
  }));
}

const attr = (
  name: string,
  o: {
    type?: string;
    multiValued?: boolean;
    required?: boolean;
    caseExact?: boolean;
    mutability?: string;
    returned?: string;
    uniqueness?: string;
    description: string;
    subAttributes?: Json[];
  },
): Json => ({
  name,
  type: o.type ?? 'string',
  multiValued: o.multiValued ?? false,
  description: o.description,
  required: o.required ?? false,
  ...(o.type === 'complex' ? {} : { caseExact: o.caseExact ?? false }),
  mutability: o.mutability ?? 'readWrite',
  returned: o.returned ?? 'default',
  uniqueness: o.uniqueness ?? 'none',
  ...(o.subAttributes ? { subAttributes: o.subAttributes } : {}),
});

/** The schemas (GET /Schemas lists them; /Schemas/:urn is one): only the attributes kept. */
export function schemas(origin: string): ScimResource[] {
  const user = [
    attr('userName', {
      required: true,
      uniqueness: 'server',
      description: 'The email address the user signs in with (stored lowercase)',
    }),
    attr('name', {
      type: 'complex',
      description: "The user's name",
      subAttributes: [
        attr('formatted', { description: 'The full name; becomes displayName when none is sent' }),
        attr('givenName', { description: 'Given name' }),
        attr('familyName', { description: 'Family name' }),
      ],
    }),
    attr('displayName', { description: 'The name shown in the platform' }),
    attr('emails', {
      type: 'complex',
      multiValued: true,
      mutability: 'readOnly',
      description: 'Derived from userName: one work address, primary',
      subAttributes: [
        attr('value', { mutability: 'readOnly', description: 'The address' }),
        attr('type', { mutability: 'readOnly', description: 'Always "work"' }),
        attr('primary', { type: 'boolean', mutability: 'readOnly', description: 'Always true' }),
      ],
    }),
    attr('active', {
      type: 'boolean',
      description: 'false disables the user and at once ends their sessions and revokes their API keys',
    }),
    attr('password', {
      mutability: 'writeOnly',
      returned: 'never',
      description: 'Accepted on creation only (at least 12 characters); changes are not supported',
    }),
    attr('groups', {
      type: 'complex',
      multiValued: true,
      mutability: 'readOnly',
      description: 'The groups the user is a member of',
      subAttributes: [
        attr('value', { mutability: 'readOnly', description: 'Group id' }),
        attr('$ref', { type: 'reference', mutability: 'readOnly', description: 'Group URI' }),
        attr('display', { mutability: 'readOnly', description: 'Group displayName' }),
        attr('type', { mutability: 'readOnly', description: 'Always "direct"' }),
      ],
    }),
  ];
  const group = [
    attr('displayName', {
      required: true,
      uniqueness: 'server',
      description: 'The group name (unique, any case)',
    }),
    attr('members', {
      type: 'complex',
      multiValued: true,
      description: 'The users in the group',
      subAttributes: [
        attr('value', { mutability: 'immutable', caseExact: true, description: 'User id' }),
        attr('$ref', { type: 'reference', mutability: 'immutable', description: 'User URI' }),
        attr('display', { mutability: 'readOnly', description: "The user's name or email" }),
        attr('type', { mutability: 'immutable', description: 'Always "User"' }),
      ],
    }),
  ];
  const doc = (id: string, name: string, description: string, attributes: Json[]): ScimResource => ({
    schemas: [SCIM.schema],
    id,
    name,
    description,
    attributes,
    meta: { resourceType: 'Schema', location: `${origin}/scim/v2/Schemas/${id}` },
  });
  return [doc(SCIM.user, 'User', 'User account', user), doc(SCIM.group, 'Group', 'Group', group)];
}

/** A list of static resources as a ListResponse. */
export function staticList(resources: ScimResource[]): ListResponse {
  return listResponse(resources, resources.length, 1, {});
}
