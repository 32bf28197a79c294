/**
 * Agent tools (issue 12 item 3): what a tool is, checked hard when an agent is saved, and how a
 * call the model makes becomes one HTTP request. A tool is an HTTP action described either
 * directly (method, URL template, a JSON schema of its arguments) or by one operation of an
 * OpenAPI 3.x document, from which the same three are derived at save time; the agent's spec
 * keeps the derived form, so a published version freezes exactly what is called. Pure: no
 * database, no network (tools.service.ts runs the calls, through the outbound guard).
 */
import { AppError } from '../shared/errors.ts';
import { isIpAddress } from '../shared/outbound.ts';

/** At most this many tools per agent. */
export const MAX_TOOLS = 8;
/** The largest OpenAPI document accepted for one tool (its JSON text). */
export const MAX_OPENAPI_BYTES = 256 * 1024;
/** The largest parameters schema of one tool (its JSON text). */
export const MAX_SCHEMA_BYTES = 16 * 1024;
/** How deep a parameters schema may nest. */
const MAX_SCHEMA_DEPTH = 6;
/** Hosts on a platform's tool allowlist, at most. */
export const MAX_TOOL_HOSTS = 100;

export const TOOL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type ToolMethod = (typeof TOOL_METHODS)[number];

/** A JSON schema (the subset kept: see `cleanSchema`). */
export type JsonSchema = Record<string, unknown>;

/** A tool as an agent's spec holds it (OpenAPI tools are stored in this derived form too). */
export interface AgentTool {
  /** The function name the model calls. */
  name: string;
  description: string;
  kind: 'http';
  method: ToolMethod;
  /** http(s) URL; `{arg}` placeholders in its path are filled from the arguments. */
  url: string;
  /** A JSON schema of type object: the arguments. */
  parameters: JsonSchema;
  /** Arguments sent in the query string (default: every one not in the path, for GET, HEAD and DELETE). */
  query?: string[];
  /** Its owner marked it safe: it runs without asking the user even when it changes something. */
  safe: boolean;
  /** The OpenAPI operation it was made from. */
  operation_id?: string;
  /** This tool's deadline per call (100–30,000 ms; default 10 s). */
  timeout_ms?: number;
  /** The largest answer it may give (1 KiB–1 MiB; default 64 KiB). */
  max_bytes?: number;
}

/** The host (and port) a tool calls, from its URL template. */
export function toolHost(t: AgentTool): string {
  try {
    return new URL(t.url.replace(PLACEHOLDER, 'x')).host;
  } catch {
    return '';
  }
}

/** Whether a call of `t` may run without the user's confirmation. */
export const runsUnasked = (t: AgentTool) => t.safe || t.method === 'GET' || t.method === 'HEAD';

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const ARG = /^[a-zA-Z0-9_.-]{1,64}$/;
const PLACEHOLDER = /\{([a-zA-Z0-9_.-]{1,64})\}/g;

/** 400 `agent.invalid` naming the field (`tools.0.url`), as the rest of an agent's checks. */
const bad = (path: string, reason: string) =>
  new AppError('agent.invalid', `${path.slice(1).replace(/\//g, '.')}: ${reason}`, 400, [{ path, reason }]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Host allowlist.

/**
 * An allowlist entry in its stored form: a host name (`api.example.com`), a wildcard for its
 * subdomains (`*.example.com`, which does not match `example.com` itself), or an IP address
 * (the outbound guard still refuses non-public ones). Returns null when it is none of these.
 */
export function normalizeHostPattern(raw: string): string | null {
  const s = raw.trim().toLowerCase().replace(/\.$/, '');
  if (!s || s.length > 253) return null;
  const wild = s.startsWith('*.');
  const name = wild ? s.slice(2) : s;
  if (!wild && (isIpAddress(name) || isIpAddress(name.replace(/^\[|\]$/g, '')))) {
    try {
      const h = new URL(`http://${name.includes(':') && !name.startsWith('[') ? `[${name}]` : name}/`)
        .hostname;
      return h;
    } catch {
      return null;
    }
  }
  const labels = name.split('.');
  if (labels.some((l) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) return null;
  // A wildcard needs a registered name under it (`*.com` would open a whole TLD).
  if (wild && labels.length < 2) return null;
  return s;
}

/** Whether a URL's host is on the allowlist. */
export function hostAllowed(patterns: readonly string[], url: URL): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => (p.startsWith('*.') ? host.endsWith(p.slice(1)) : host === p));
}

// ---------------------------------------------------------------------------------------------
// Schemas.

const SCHEMA_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object', 'null']);
const KEPT_SCALARS = [
  'description',
  'title',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'default',
] as const;

/**
 * A JSON schema reduced to what function calling needs (types, properties, items, required,
 * enum, bounds, descriptions). `deref` resolves a `$ref` (OpenAPI's components), or refuses it.
 */
function cleanSchema(
  v: unknown,
  path: string,
  depth: number,
  deref: (ref: string, path: string) => unknown,
): JsonSchema {
  if (depth > MAX_SCHEMA_DEPTH) throw bad(path, `nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
  if (isObject(v) && typeof v.$ref === 'string')
    return cleanSchema(deref(v.$ref, path), path, depth + 1, deref);
  if (!isObject(v)) throw bad(path, 'must be a JSON schema (an object)');
  const out: JsonSchema = {};
  if (v.type !== undefined) {
    const types = Array.isArray(v.type) ? v.type : [v.type];
    if (!types.length || !types.every((t) => typeof t === 'string' && SCHEMA_TYPES.has(t)))
      throw bad(`${path}/type`, `must be one of ${[...SCHEMA_TYPES].join(', ')}`);
    out.type = v.type;
  }
  for (const k of KEPT_SCALARS) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x === 'object' && x !== null) throw bad(`${path}/${k}`, 'must be a plain value');
    out[k] = x;
  }
  if (v.enum !== undefined) {
    if (
      !Array.isArray(v.enum) ||
      v.enum.length > 100 ||
      v.enum.some((e) => typeof e === 'object' && e !== null)
    )
      throw bad(`${path}/enum`, 'must be a list of at most 100 plain values');
    out.enum = v.enum;
  }
  if (v.properties !== undefined) {
    if (!isObject(v.properties)) throw bad(`${path}/properties`, 'must be an object');
    const props: Record<string, JsonSchema> = {};
    const names = Object.keys(v.properties);
    if (names.length > 64) throw bad(`${path}/properties`, 'may have at most 64 properties');
    for (const n of names) {
      if (!ARG.test(n))
        throw bad(`${path}/properties`, `${JSON.stringify(n).slice(0, 80)} is not a valid name`);
      props[n] = cleanSchema(v.properties[n], `${path}/properties/${n}`, depth + 1, deref);
    }
    out.properties = props;
  }
  if (v.required !== undefined) {
    const props = (out.properties ?? {}) as Record<string, unknown>;
    if (!Array.isArray(v.required) || v.required.some((r) => typeof r !== 'string' || !(r in props)))
      throw bad(`${path}/required`, 'must list names of its properties');
    out.required = [...new Set(v.required as string[])];
  }
  if (v.items !== undefined) out.items = cleanSchema(v.items, `${path}/items`, depth + 1, deref);
  if (v.additionalProperties !== undefined) {
    if (typeof v.additionalProperties !== 'boolean')
      throw bad(`${path}/additionalProperties`, 'must be true or false');
    out.additionalProperties = v.additionalProperties;
  }
  return out;
}

/** The arguments schema of a tool: an object schema, bounded. */
function parametersOf(v: unknown, path: string, deref = noRefs): JsonSchema {
  const s = cleanSchema(v ?? { type: 'object', properties: {} }, path, 0, deref);
  if (s.type !== 'object') throw bad(`${path}/type`, "must be 'object'");
  s.properties ??= {};
  if (JSON.stringify(s).length > MAX_SCHEMA_BYTES)
    throw bad(path, `must be at most ${MAX_SCHEMA_BYTES / 1024} KiB as JSON`);
  return s;
}

const noRefs = (_ref: string, path: string): unknown => {
  throw bad(path, '$ref is not supported here: write the schema out');
};

// ---------------------------------------------------------------------------------------------
// Tools.

/** Checks a URL template: http(s), no userinfo or fragment, placeholders only in the path. */
function checkUrl(v: unknown, path: string): { url: string; parsed: URL; placeholders: string[] } {
  if (typeof v !== 'string' || v.length > 2000)
    throw bad(path, 'must be an http(s) URL of at most 2000 characters');
  const url = v.trim();
  const placeholders = [...url.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  let parsed: URL;
  try {
    parsed = new URL(url.replace(PLACEHOLDER, 'x'));
  } catch {
    throw bad(path, 'must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw bad(path, 'must be an http(s) URL');
  if (parsed.username || parsed.password) throw bad(path, 'must not carry a user name or password');
  if (parsed.hash) throw bad(path, 'must not have a #fragment');
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(url)?.[1] ?? '';
  if (authority.includes('{')) throw bad(path, 'placeholders may only be in the path');
  if (/[{}]/.test(url.replace(PLACEHOLDER, ''))) throw bad(path, 'has a { or } that is not a {placeholder}');
  return { url, parsed, placeholders };
}

function text(v: unknown, path: string, max: number, fallback = ''): string {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw bad(path, 'must be text');
  const t = v.trim();
  if (t.length > max) throw bad(path, `must be at most ${max} characters`);
  return t;
}

/** The checks a method, URL, schema and query list share, whatever the tool was made from. */
function finishTool(
  base: Omit<AgentTool, 'url' | 'parameters' | 'query'> & { query?: unknown },
  url: unknown,
  parameters: JsonSchema,
  path: string,
  hostOk: (u: URL) => boolean,
): AgentTool {
  const u = checkUrl(url, `${path}/url`);
  if (!hostOk(u.parsed))
    throw new AppError(
      'tool.host_not_allowed',
      `${path.slice(1).replace(/\//g, '.')}.url: ${u.parsed.hostname} is not on this platform's tool host allowlist`,
      400,
      [{ path: `${path}/url`, reason: "is not on the platform's tool host allowlist" }],
    );
  const props = parameters.properties as Record<string, unknown>;
  const required = new Set((parameters.required as string[] | undefined) ?? []);
  for (const p of u.placeholders)
    if (!(p in props) || !required.has(p))
      throw bad(`${path}/url`, `{${p}} must be a required property of parameters`);
  let query: string[] | undefined;
  if (base.query !== undefined) {
    if (!Array.isArray(base.query) || base.query.some((q) => typeof q !== 'string' || !(q in props)))
      throw bad(`${path}/query`, 'must list names of properties of parameters');
    query = [...new Set(base.query as string[])];
  }
  const { query: _q, ...rest } = base;
  return { ...rest, url: u.url, parameters, ...(query ? { query } : {}) };
}

function methodOf(v: unknown, path: string): ToolMethod {
  const m = typeof v === 'string' ? v.toUpperCase() : '';
  if (!(TOOL_METHODS as readonly string[]).includes(m))
    throw bad(path, `must be one of ${TOOL_METHODS.join(', ')}`);
  return m as ToolMethod;
}

/** The optional per-tool limits. */
function limitsOf(v: Record<string, unknown>, path: string): Pick<AgentTool, 'timeout_ms' | 'max_bytes'> {
  const out: Pick<AgentTool, 'timeout_ms' | 'max_bytes'> = {};
  const int = (k: 'timeout_ms' | 'max_bytes', min: number, max: number, what: string) => {
    const x = v[k];
    if (x === undefined || x === null) return;
    if (!Number.isInteger(x) || (x as number) < min || (x as number) > max) throw bad(`${path}/${k}`, what);
    out[k] = x as number;
  };
  int('timeout_ms', 100, 30_000, 'must be a whole number of milliseconds from 100 to 30,000');
  int('max_bytes', 1024, 1024 * 1024, 'must be a whole number of bytes from 1,024 to 1,048,576');
  return out;
}

function safeOf(v: unknown, path: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw bad(path, 'must be true or false');
  return v;
}

/** A tool described directly: `{name, description, kind: 'http', method, url, parameters, query?, safe?}`. */
function httpTool(v: Record<string, unknown>, path: string, hostOk: (u: URL) => boolean): AgentTool {
  if (typeof v.name !== 'string' || !NAME.test(v.name))
    throw bad(`${path}/name`, 'must be 1 to 64 letters, digits, _ and -');
  return finishTool(
    {
      name: v.name,
      description: text(v.description, `${path}/description`, 1000),
      kind: 'http',
      method: methodOf(v.method, `${path}/method`),
      safe: safeOf(v.safe, `${path}/safe`),
      ...limitsOf(v, path),
      ...(v.query !== undefined ? { query: v.query } : {}),
      ...(typeof v.operation_id === 'string' ? { operation_id: v.operation_id.slice(0, 200) } : {}),
    },
    v.url,
    parametersOf(v.parameters, `${path}/parameters`),
    path,
    hostOk,
  );
}

/**
 * A tool from one operation of an OpenAPI 3.x document: `{kind: 'openapi', openapi, operation_id,
 * name?, description?, safe?}`. Method and URL (the operation's, path item's or document's first
 * server, with its variables' defaults, plus the path) and the arguments (path and query
 * parameters, and the properties of an application/json object request body) are derived here.
 */
function openapiTool(v: Record<string, unknown>, path: string, hostOk: (u: URL) => boolean): AgentTool {
  let doc = v.openapi;
  if (typeof doc === 'string') {
    if (doc.length > MAX_OPENAPI_BYTES)
      throw bad(`${path}/openapi`, `must be at most ${MAX_OPENAPI_BYTES / 1024} KiB`);
    try {
      doc = JSON.parse(doc);
    } catch {
      throw bad(`${path}/openapi`, 'must be an OpenAPI 3 document (JSON)');
    }
  } else if (JSON.stringify(doc ?? null).length > MAX_OPENAPI_BYTES)
    throw bad(`${path}/openapi`, `must be at most ${MAX_OPENAPI_BYTES / 1024} KiB`);
  if (
    !isObject(doc) ||
    typeof doc.openapi !== 'string' ||
    !doc.openapi.startsWith('3.') ||
    !isObject(doc.paths)
  )
    throw bad(`${path}/openapi`, 'must be an OpenAPI 3.x document with paths');
  const opId = v.operation_id;
  if (typeof opId !== 'string' || !opId)
    throw bad(`${path}/operation_id`, 'required: the operationId to call');
  const root = doc;
  let found: {
    method: ToolMethod;
    path: string;
    item: Record<string, unknown>;
    op: Record<string, unknown>;
  } | null = null;
  for (const [p, item] of Object.entries(root.paths as Record<string, unknown>)) {
    if (!isObject(item)) continue;
    for (const m of TOOL_METHODS) {
      const op = item[m.toLowerCase()];
      if (isObject(op) && op.operationId === opId) found = { method: m, path: p, item, op };
    }
  }
  if (!found) throw bad(`${path}/operation_id`, `the document has no operation ${opId.slice(0, 100)}`);
  /** `#/components/...` references inside the document (at most 50 followed per tool). */
  let refs = 0;
  const deref = (ref: string, at: string): unknown => {
    if (++refs > 50 || !ref.startsWith('#/')) throw bad(at, `cannot follow $ref ${ref.slice(0, 100)}`);
    let node: unknown = root;
    for (const part of ref.slice(2).split('/')) {
      const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
      node = isObject(node) ? node[key] : undefined;
    }
    if (node === undefined) throw bad(at, `$ref ${ref.slice(0, 100)} names nothing in the document`);
    return node;
  };
  const resolved = (x: unknown, at: string): unknown =>
    isObject(x) && typeof x.$ref === 'string' ? resolved(deref(x.$ref, at), at) : x;
  const servers = [found.op.servers, found.item.servers, root.servers].find(
    (s) => Array.isArray(s) && s.length,
  ) as unknown[] | undefined;
  const server = resolved(servers?.[0], `${path}/openapi/servers`);
  if (!isObject(server) || typeof server.url !== 'string')
    throw bad(`${path}/openapi/servers`, 'must name the server (an absolute http(s) URL)');
  let base = server.url;
  if (isObject(server.variables))
    for (const [k, sv] of Object.entries(server.variables))
      if (isObject(sv) && typeof sv.default === 'string') base = base.replaceAll(`{${k}}`, sv.default);
  const url = `${base.replace(/\/+$/, '')}${found.path}`;

  const props: Record<string, unknown> = {};
  const required: string[] = [];
  const query: string[] = [];
  const params = new Map<string, Record<string, unknown>>();
  for (const list of [found.item.parameters, found.op.parameters]) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw bad(`${path}/openapi`, 'parameters must be a list');
    for (const raw of list) {
      const p = resolved(raw, `${path}/openapi`);
      if (!isObject(p) || typeof p.name !== 'string' || typeof p.in !== 'string')
        throw bad(`${path}/openapi`, 'a parameter has no name or in');
      params.set(`${p.in}:${p.name}`, p);
    }
  }
  for (const p of params.values()) {
    const name = p.name as string;
    if (p.in === 'header' || p.in === 'cookie') {
      if (p.required === true)
        throw bad(
          `${path}/openapi`,
          `the required ${p.in} parameter ${name} is not supported (set the tool's secret header instead)`,
        );
      continue;
    }
    if (p.in !== 'path' && p.in !== 'query')
      throw bad(`${path}/openapi`, `parameter ${name}: unknown in ${String(p.in)}`);
    props[name] = {
      ...(isObject(resolved(p.schema, `${path}/openapi`))
        ? (resolved(p.schema, `${path}/openapi`) as object)
        : { type: 'string' }),
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
    };
    if (p.in === 'path' || p.required === true) required.push(name);
    if (p.in === 'query') query.push(name);
  }
  const rb = resolved(found.op.requestBody, `${path}/openapi`);
  if (rb !== undefined) {
    const content = isObject(rb) && isObject(rb.content) ? rb.content : {};
    const media = (content as Record<string, unknown>)['application/json'];
    const schema = isObject(media) ? resolved(media.schema, `${path}/openapi`) : undefined;
    if (!isObject(schema) || schema.type !== 'object' || !isObject(schema.properties))
      throw bad(`${path}/openapi`, 'the request body must be an application/json object with properties');
    for (const [k, s] of Object.entries(schema.properties)) {
      if (k in props) throw bad(`${path}/openapi`, `the body property ${k} has a parameter's name`);
      props[k] = s;
    }
    if (Array.isArray(schema.required)) required.push(...(schema.required as string[]));
  }
  const parameters = parametersOf(
    { type: 'object', properties: props, ...(required.length ? { required } : {}) },
    `${path}/openapi`,
    deref,
  );
  const name = v.name !== undefined ? v.name : opId.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64);
  if (typeof name !== 'string' || !NAME.test(name))
    throw bad(`${path}/name`, 'must be 1 to 64 letters, digits, _ and -');
  const summary = typeof found.op.summary === 'string' ? found.op.summary : found.op.description;
  return finishTool(
    {
      name,
      description: text(
        v.description ?? (typeof summary === 'string' ? summary.slice(0, 1000) : ''),
        `${path}/description`,
        1000,
      ),
      kind: 'http',
      method: found.method,
      safe: safeOf(v.safe, `${path}/safe`),
      ...limitsOf(v, path),
      operation_id: opId.slice(0, 200),
      ...(query.length && !['GET', 'HEAD', 'DELETE'].includes(found.method) ? { query } : {}),
    },
    url,
    parameters,
    path,
    hostOk,
  );
}

/** Checks an agent's tools (`/tools`); the URL's host must pass `hostOk` (the allowlist). */
export function checkTools(v: unknown, hostOk: (u: URL) => boolean): AgentTool[] {
  if (!Array.isArray(v) || v.length > MAX_TOOLS)
    throw bad('/tools', `must be a list of at most ${MAX_TOOLS} tools`);
  const out = v.map((t, i) => {
    const path = `/tools/${i}`;
    if (!isObject(t)) throw bad(path, 'must be an object');
    if (t.kind === 'openapi') return openapiTool(t, path, hostOk);
    if (t.kind === 'http' || t.kind === undefined) return httpTool(t, path, hostOk);
    throw bad(`${path}/kind`, "must be 'http' or 'openapi'");
  });
  const seen = new Set<string>();
  out.forEach((t, i) => {
    if (seen.has(t.name)) throw bad(`/tools/${i}/name`, `another tool is named ${t.name}`);
    seen.add(t.name);
  });
  return out;
}

/** The tools as OpenAI's `tools` of a chat request. */
export function functionsOf(tools: readonly AgentTool[]) {
  return tools.map((t) => ({
    type: 'function' as const,
    function: { name: t.name, description: t.description, parameters: t.parameters },
  }));
}

/** One request a call makes: the URL with its arguments, and the JSON body (null: none). */
export interface ToolRequest {
  url: URL;
  method: ToolMethod;
  body: string | null;
}

/**
 * The request of a call with `rawArgs` (the model's JSON text): placeholders filled
 * (URL-encoded), query arguments appended, the other declared arguments as a JSON body (POST,
 * PUT, PATCH). Throws a plain Error with a reason fit for the model when the arguments are wrong.
 */
export function requestOf(t: AgentTool, rawArgs: string): ToolRequest {
  let args: unknown;
  try {
    args = rawArgs.trim() ? JSON.parse(rawArgs) : {};
  } catch {
    throw new Error('the arguments are not JSON');
  }
  if (!isObject(args)) throw new Error('the arguments must be a JSON object');
  const props = t.parameters.properties as Record<string, unknown>;
  for (const r of (t.parameters.required as string[] | undefined) ?? [])
    if (args[r] === undefined || args[r] === null) throw new Error(`the argument ${r} is required`);
  const used = new Set<string>();
  const url = new URL(
    t.url.replace(PLACEHOLDER, (_m, name: string) => {
      used.add(name);
      const v = args[name];
      const seg = typeof v === 'string' ? v : JSON.stringify(v);
      // A dot segment would move the path up (URLs resolve `..` and `%2E%2E` alike).
      if (/^(\.|%2e){1,2}$/i.test(seg)) throw new Error(`the argument ${name} may not be . or ..`);
      return encodeURIComponent(seg);
    }),
  );
  const declared = Object.keys(args).filter((k) => k in props && !used.has(k));
  const query =
    t.query ?? (t.method === 'GET' || t.method === 'HEAD' || t.method === 'DELETE' ? declared : []);
  const body: Record<string, unknown> = {};
  for (const k of declared) {
    const v = args[k];
    if (query.includes(k)) {
      for (const x of Array.isArray(v) ? v : [v])
        url.searchParams.append(k, typeof x === 'string' ? x : JSON.stringify(x));
    } else body[k] = v;
  }
  const hasBody = t.method === 'POST' || t.method === 'PUT' || t.method === 'PATCH';
  return { url, method: t.method, body: hasBody ? JSON.stringify(body) : null };
}
