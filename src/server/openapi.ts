/**
 * OpenAPI 3.1 documents generated from an Elysia app's own route table: each route's method and
 * path, its declared permission (`detail['x-permission']`) and the security that admits it, its
 * summary and tags, and the TypeBox schemas of its params, query and body (JSON Schema already).
 * Built once per app, when first asked for; and a reference page rendered from a document on
 * the server (HTML and CSS only: no script, nothing fetched from anywhere), so it works offline.
 */
import type { OpenAPIV3_1 } from 'openapi-types';
import { escapeHtml } from '../shared/html.ts';

/** What the generator reads of a route (Elysia's `app.routes` entries). */
export interface RouteInfo {
  method: string;
  path: string;
  hooks: unknown;
}

interface RouteHooks {
  body?: unknown;
  query?: unknown;
  params?: unknown;
  detail?: Record<string, unknown> & { hide?: boolean; summary?: string; tags?: string[] };
}

/** How a document describes its API: title, its security schemes, and the security of a permission. */
export interface DocumentSpec {
  title: string;
  version: string;
  description: string;
  securitySchemes: Record<string, OpenAPIV3_1.SecuritySchemeObject>;
  /** The security requirements a permission is met by; `[]` for public routes. */
  securityOf(permission: string): OpenAPIV3_1.SecurityRequirementObject[];
  /** The media type of a route's request body (default application/json). */
  bodyMediaType?(path: string): string;
  /** Tags of routes that declare none, by path. */
  tagOf?(path: string): string;
  /** Summaries of routes that declare none (routes still on the legacy table). */
  summaries?: Record<string, string>;
}

/** Our own schema keywords (shared/validation.ts), renamed to OpenAPI extensions in documents. */
const OWN_KEYWORDS: Record<string, string> = { errorCode: 'x-error-code', errorMessage: 'x-error-message' };

type ParamSchema = NonNullable<OpenAPIV3_1.ParameterObject['schema']>;

/** A TypeBox schema as plain JSON Schema: symbols dropped, our keywords as `x-` extensions. */
function documented(schema: unknown): ParamSchema {
  const plain = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(plain);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[OWN_KEYWORDS[k] ?? k] = plain(x);
    return out;
  };
  return plain(JSON.parse(JSON.stringify(schema ?? {}))) as ParamSchema;
}

/** `/users/:id` → `/users/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

const ERROR_SCHEMA: OpenAPIV3_1.SchemaObject = {
  type: 'object',
  description: "The contract's error: a dotted code, a message, and details when fields are at fault.",
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', examples: ['request.invalid'] },
        message: { type: 'string' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            required: ['path', 'reason'],
            properties: {
              path: { type: 'string', description: 'A JSON Pointer into the request.' },
              reason: { type: 'string' },
            },
          },
        },
      },
    },
  },
};

const errorResponse = (description: string): OpenAPIV3_1.ResponseObject => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** Builds the OpenAPI 3.1 document of an app's routes. */
export function openApiDocument(
  routes: readonly RouteInfo[],
  spec: DocumentSpec,
  permissionOf: (route: string) => string | undefined = () => undefined,
): OpenAPIV3_1.Document {
  const paths: OpenAPIV3_1.PathsObject = {};
  for (const r of routes) {
    const hooks = (r.hooks ?? {}) as RouteHooks;
    if (hooks.detail?.hide) continue;
    const method = r.method.toLowerCase() as OpenAPIV3_1.HttpMethods;
    const path = openApiPath(r.path);
    const key = `${r.method} ${r.path}`;
    const declared = hooks.detail?.['x-permission'];
    const permission = typeof declared === 'string' ? declared : permissionOf(key);
    const { hide: _hide, ...detail } = hooks.detail ?? {};
    const parameters: OpenAPIV3_1.ParameterObject[] = [];
    const paramSchema = hooks.params as { properties?: Record<string, unknown> } | undefined;
    for (const name of [...r.path.matchAll(/:(\w+)/g)].map((m) => m[1]!)) {
      const s = paramSchema?.properties?.[name];
      parameters.push({
        name,
        in: 'path',
        required: true,
        schema: s ? documented(s) : { type: 'string' },
        ...(s && typeof (s as { description?: unknown }).description === 'string'
          ? { description: (s as { description: string }).description }
          : {}),
      });
    }
    const query = hooks.query as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, s] of Object.entries(query?.properties ?? {})) {
      parameters.push({
        name,
        in: 'query',
        required: query?.required?.includes(name) ?? false,
        schema: documented(s),
        ...(typeof (s as { description?: unknown }).description === 'string'
          ? { description: (s as { description: string }).description }
          : {}),
      });
    }
    const operation: OpenAPIV3_1.OperationObject = {
      operationId: `${method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: (detail.summary as string | undefined) ?? spec.summaries?.[key] ?? `${r.method} ${path}`,
      tags: (detail.tags as string[] | undefined) ?? [spec.tagOf?.(r.path) ?? 'other'],
      ...detail,
      ...(permission ? { 'x-permission': permission, security: spec.securityOf(permission) } : {}),
      // Parameters a route documents itself (a query it reads on its own) follow the computed ones.
      ...(parameters.length || Array.isArray(detail.parameters)
        ? { parameters: [...parameters, ...((detail.parameters as OpenAPIV3_1.ParameterObject[]) ?? [])] }
        : {}),
      ...(hooks.body !== undefined
        ? {
            requestBody: {
              required: false,
              content: {
                [spec.bodyMediaType?.(r.path) ?? 'application/json']: { schema: documented(hooks.body) },
              },
            },
          }
        : {}),
      responses: {
        '200': { description: 'Success (201 for creations, 204 for removals, 302 for browser redirects).' },
        ...(parameters.length || hooks.body !== undefined ? { '400': errorResponse('Invalid request') } : {}),
        ...(permission && permission !== 'public'
          ? { '401': errorResponse('No valid credentials'), '403': errorResponse('Not allowed') }
          : {}),
      },
    };
    paths[path] = { ...paths[path], [method]: operation };
  }
  return {
    openapi: '3.1.0',
    info: { title: spec.title, version: spec.version, description: spec.description },
    paths,
    components: { schemas: { Error: ERROR_SCHEMA }, securitySchemes: spec.securitySchemes },
  };
}

// ---------------------------------------------------------------------------------------------
// The reference page
// ---------------------------------------------------------------------------------------------

const CSS = `*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1b1f24;background:#f7f8fa}
header{padding:1.25rem 2rem;background:#1b1f24;color:#fff}header h1{margin:0;font-size:1.4rem}header p{margin:.25rem 0 0;opacity:.8}header a{color:#fff}
main{max-width:64rem;margin:1.5rem auto;padding:0 1.5rem}h2{margin:2rem 0 .5rem;text-transform:capitalize}
details{background:#fff;border:1px solid #d8dde3;border-radius:6px;margin:.4rem 0}summary{cursor:pointer;padding:.5rem .75rem;display:flex;gap:.75rem;align-items:baseline}
.m{font:600 .8rem ui-monospace,monospace;min-width:4.2rem;text-align:center;padding:.1rem .3rem;border-radius:4px;color:#fff;background:#57606a}
.get{background:#0969da}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}.delete{background:#cf222e}
code,.p{font-family:ui-monospace,monospace}.p{font-weight:600}.s{color:#57606a}.body{padding:.25rem 1rem 1rem;border-top:1px solid #eef0f3}
.perm{font-size:.8rem;padding:.05rem .45rem;border-radius:999px;background:#eef0f3;margin-left:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border-bottom:1px solid #eef0f3;padding:.3rem .5rem;text-align:left;vertical-align:top}
ul.schema{margin:.25rem 0;padding-left:1.2rem}footer{max-width:64rem;margin:2rem auto;padding:0 1.5rem;color:#57606a;font-size:.85rem}`;

/** The page's CSP: nothing but its own inline style (by hash); no script, no fetch, no frames. */
export const DOCS_CSP = `default-src 'none'; style-src 'sha256-${new Bun.CryptoHasher('sha256').update(CSS).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

type Schema = OpenAPIV3_1.SchemaObject & Record<string, unknown>;

/** A one-line type of a schema: `string`, `integer`, `"a" | "b"`, `array of string`, … */
function typeOf(s: Schema): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.anyOf)) return (s.anyOf as Schema[]).map(typeOf).join(' | ');
  if (s.type === 'array') return `array of ${s.items ? typeOf(s.items as Schema) : 'any'}`;
  if (Array.isArray(s.type)) return s.type.join(' | ');
  return typeof s.type === 'string' ? s.type : 'any';
}

/** A schema's properties as a nested list (objects inside objects, arrays of objects). */
function schemaHtml(s: Schema, depth = 0): string {
  const props = s.properties as Record<string, Schema> | undefined;
  if (!props || depth > 6) return '';
  const required = new Set((s.required as string[] | undefined) ?? []);
  const items = Object.entries(props).map(([name, p]) => {
    const inner = p.type === 'array' && p.items ? (p.items as Schema) : p;
    return `<li><span class="p">${escapeHtml(name)}</span> <code>${escapeHtml(typeOf(p))}</code>${required.has(name) ? ' <b>required</b>' : ''}${p.description ? ` <span class="s">${escapeHtml(String(p.description))}</span>` : ''}${schemaHtml(inner, depth + 1)}</li>`;
  });
  return `<ul class="schema">${items.join('')}</ul>`;
}

/** The reference page of a document: operations grouped by tag, each with its inputs. */
export function docsPage(doc: OpenAPIV3_1.Document): string {
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item ?? {}) as [string, OpenAPIV3_1.OperationObject][]) {
      const tag = op.tags?.[0] ?? 'other';
      const perm = (op as Record<string, unknown>)['x-permission'];
      const params = (op.parameters ?? []) as OpenAPIV3_1.ParameterObject[];
      const body = op.requestBody as OpenAPIV3_1.RequestBodyObject | undefined;
      const [mediaType, media] = Object.entries(body?.content ?? {})[0] ?? [];
      const rows = params
        .map(
          (p) =>
            `<tr><td class="p">${escapeHtml(p.name)}</td><td>${p.in}</td><td><code>${escapeHtml(typeOf((p.schema ?? {}) as Schema))}</code></td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
        )
        .join('');
      const html = `<details><summary><span class="m ${method}">${method.toUpperCase()}</span><code>${escapeHtml(path)}</code><span>${escapeHtml(op.summary ?? '')}</span>${perm ? `<span class="perm">${escapeHtml(String(perm))}</span>` : ''}</summary><div class="body">${rows ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>${rows}</table>` : ''}${media ? `<p>Body (<code>${escapeHtml(mediaType!)}</code>):</p>${schemaHtml((media.schema ?? {}) as Schema) || '<p class="s">free-form</p>'}` : ''}${!rows && !media ? '<p class="s">No parameters.</p>' : ''}</div></details>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), html]);
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2>${escapeHtml(tag)}</h2>${ops.join('')}`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(doc.info.title)}</title><style>${CSS}</style></head><body>
<header><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description ?? '')} · OpenAPI ${escapeHtml(doc.openapi)} · <a href="openapi.json">openapi.json</a></p></header>
<main>${sections}</main><footer>Version ${escapeHtml(doc.info.version)}.</footer></body></html>`;
}

/** The page as a response, with its CSP (only its own inline style). */
export function docsResponse(doc: OpenAPIV3_1.Document): Response {
  return new Response(docsPage(doc), {
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': DOCS_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
  });
}
