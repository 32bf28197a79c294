/**
 * Agent tools at run time and their settings: the platform's host allowlist (its admins'),
 * each tool's secret (sealed at rest, bound to agent and tool, never returned), and one call
 * of a tool the model asked for, made through the outbound guard (every hop's address checked
 * after resolution, the allowlist on every hop, a deadline and a size limit per call) and
 * audited whatever became of it. What the model and the user learn of a failure is generic.
 */
import type { Database } from 'bun:sqlite';
import { type App, type SecretSite, secretContext, secretsOf } from '../app/index.ts';
import { actorOf, type PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { isOutboundError } from '../shared/outbound.ts';
import { findVersion } from './agents.repository.ts';
import { editableAgent } from './agents.service.ts';
import {
  allToolSecrets,
  deleteToolSecret,
  replaceToolHosts,
  setToolSecretValue,
  toolHosts,
  toolSecret,
  upsertToolSecret,
} from './tools.repository.ts';
import {
  type AgentTool,
  hostAllowed,
  MAX_TOOL_HOSTS,
  normalizeHostPattern,
  requestOf,
  toolHost,
} from './tools.ts';

/** A call's deadline and the largest answer it may have, by default. */
export const TOOL_TIMEOUT_MS = 10_000;
export const TOOL_MAX_BYTES = 64 * 1024;

/** What the model is told when a call failed, whatever the reason (never the guard's). */
export const TOOL_FAILED = 'the tool could not be reached, or its answer was refused';

// ---------------------------------------------------------------------------------------------
// The allowlist.

export function toolHostList(c: PlatformRequestContext) {
  return { hosts: toolHosts(c.db) };
}

/** Replaces the platform's tool host allowlist (`settings:write`); audited with what changed. */
export function setToolHostList(c: PlatformRequestContext, body: { hosts: string[] }) {
  if (body.hosts.length > MAX_TOOL_HOSTS)
    throw new AppError('tool.invalid_hosts', `hosts: at most ${MAX_TOOL_HOSTS}`, 400, [
      { path: '/hosts', reason: `at most ${MAX_TOOL_HOSTS} entries` },
    ]);
  const hosts = body.hosts.map((h, i) => {
    const n = normalizeHostPattern(h);
    if (!n)
      throw new AppError(
        'tool.invalid_hosts',
        `hosts.${i}: must be a host name, *.example.com, or an IP address`,
        400,
        [{ path: `/hosts/${i}`, reason: 'must be a host name, *.example.com, or an IP address' }],
      );
    return n;
  });
  const next = [...new Set(hosts)].sort();
  const before = toolHosts(c.db);
  c.db.transaction(() => {
    replaceToolHosts(c.db, next, actorOf(c.principal), c.app.clock.now());
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'platform.tool_hosts_changed',
      target: 'platform:tool_hosts',
      details: {
        added: next.filter((h) => !before.includes(h)),
        removed: before.filter((h) => !next.includes(h)),
      },
    });
  })();
  return { hosts: next };
}

/** Whether a URL's host is on `db`'s allowlist now. */
export const allowedBy = (db: Database) => {
  const hosts = toolHosts(db);
  return (u: URL) => hostAllowed(hosts, u);
};

// ---------------------------------------------------------------------------------------------
// Secrets.

const secretField = (agentId: string, tool: string) => `agent:${agentId}:tool:${tool}:secret`;

/** Headers a secret may not be sent in: the request's framing is the guard's. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'proxy-authorization',
]);

/** The tool names of an agent's draft and latest version (a secret is for one of those). */
function toolNamesOf(a: { draft: string }, latest: string | null): Set<string> {
  const names = new Set<string>();
  for (const spec of [a.draft, latest])
    if (spec) for (const t of (JSON.parse(spec) as { tools?: AgentTool[] }).tools ?? []) names.add(t.name);
  return names;
}

/**
 * Sets a tool's secret (an agent's editors; `{value, header?}`, the header `authorization` by
 * default, its value sent as given, e.g. `Bearer …`): sealed, bound to the agent and the tool.
 */
export function setToolSecret(
  c: PlatformRequestContext,
  agentId: string,
  tool: string,
  body: { value: string; header?: string },
) {
  const a = editableAgent(c, agentId);
  const latest =
    a.latest_version === null ? null : (findVersion(c.db, agentId, a.latest_version)?.spec ?? null);
  if (!toolNamesOf(a, latest).has(tool))
    throw new AppError('tool.not_found', `the agent has no tool named ${tool.slice(0, 64)}`, 404);
  const header = (body.header ?? 'authorization').toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(header) || RESERVED_HEADERS.has(header))
    throw new AppError('tool.invalid_secret', 'header: must be a header name a secret may go in', 400, [
      { path: '/header', reason: 'must be a header name (not Host, Content-Length or the like)' },
    ]);
  if (/[\r\n\0]/.test(body.value) || !body.value.trim())
    throw new AppError('tool.invalid_secret', 'value: must be one line of text', 400, [
      { path: '/value', reason: 'must be one line of text' },
    ]);
  c.db.transaction(() => {
    upsertToolSecret(c.db, {
      agent_id: agentId,
      tool,
      header,
      value: secretsOf(c.db).seal(body.value, secretField(agentId, tool)),
      updated_at: c.app.clock.now(),
    });
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.tool_secret_set',
      target: `agent:${agentId}`,
      details: { tool, header },
    });
  })();
  return { secret: { tool, header, set: true } };
}

export function clearToolSecret(c: PlatformRequestContext, agentId: string, tool: string): void {
  editableAgent(c, agentId);
  c.db.transaction(() => {
    if (!deleteToolSecret(c.db, agentId, tool))
      throw new AppError('tool.not_found', `the tool ${tool.slice(0, 64)} has no secret`, 404);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.tool_secret_cleared',
      target: `agent:${agentId}`,
      details: { tool },
    });
  })();
}

/** Where tool secrets are stored: each platform's `agent_tool_secrets`. */
export const TOOL_SECRET_SITE: SecretSite = {
  name: 'agent_tool_secrets',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    const rows = allToolSecrets(db);
    for (const r of rows)
      setToolSecretValue(
        db,
        r.agent_id,
        r.tool,
        rewrite(r.value, secretContext(scope, secretField(r.agent_id, r.tool))),
      );
    return rows.length;
  },
};

// ---------------------------------------------------------------------------------------------
// Calls.

/** Where a call is made from: the turn's database (its own lease), and who it is for. */
export interface ToolEnv {
  app: App;
  db: Database;
  actor: string;
  agentId: string | null;
  conversationId: string;
  signal: AbortSignal;
}

/** What became of a call: the model's tool message, and what the user is shown. */
export interface ToolOutcome {
  ok: boolean;
  /** The tool's message to the model. */
  content: string;
  /** For the client and the audit trail. */
  status: number | null;
  outcome: 'ok' | 'http_error' | 'failed' | 'bad_arguments' | 'host_not_allowed' | 'declined' | 'expired';
  duration_ms: number;
}

function audit(env: ToolEnv, tool: AgentTool, host: string, o: Omit<ToolOutcome, 'content' | 'ok'>): void {
  env.app.audit.append(env.db, {
    actor: env.actor,
    action: 'agent.tool_called',
    target: env.agentId ? `agent:${env.agentId}` : `conversation:${env.conversationId}`,
    details: {
      tool: tool.name,
      method: tool.method,
      host,
      outcome: o.outcome,
      status: o.status,
      duration_ms: o.duration_ms,
      conversation: env.conversationId,
    },
  });
}

/** A call that was not made (declined by the user, or expired): audited, and what the model is told. */
export function notRun(env: ToolEnv, tool: AgentTool, outcome: 'declined' | 'expired'): ToolOutcome {
  const o = { status: null, outcome, duration_ms: 0 } as const;
  audit(env, tool, toolHost(tool), o);
  return {
    ok: false,
    content: JSON.stringify({ error: outcome === 'declined' ? 'the user declined this call' : 'not run' }),
    ...o,
  };
}

/**
 * Makes one call: the allowlist first (it may have changed since the agent was saved, and it is
 * checked again on every redirect), then the guard's fetch with this call's deadline and size
 * limit, the tool's secret in its header (dropped if a redirect leaves the origin). Never throws:
 * a failure is an outcome, told to the model generically.
 */
export async function runTool(env: ToolEnv, tool: AgentTool, rawArgs: string): Promise<ToolOutcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let req: ReturnType<typeof requestOf>;
  try {
    req = requestOf(tool, rawArgs);
  } catch (e) {
    const o = { status: null, outcome: 'bad_arguments' as const, duration_ms: ms() };
    audit(env, tool, toolHost(tool), o);
    return { ok: false, content: JSON.stringify({ error: (e as Error).message }), ...o };
  }
  const host = req.url.host;
  const allowed = allowedBy(env.db);
  if (!allowed(req.url)) {
    const o = { status: null, outcome: 'host_not_allowed' as const, duration_ms: ms() };
    audit(env, tool, host, o);
    return { ok: false, content: JSON.stringify({ error: TOOL_FAILED }), ...o };
  }
  const headers: Record<string, string> = {
    accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
    'user-agent': 'soulfra-agent-tool',
  };
  if (req.body !== null) headers['content-type'] = 'application/json';
  const secret = env.agentId ? toolSecret(env.db, env.agentId, tool.name) : null;
  try {
    if (secret && env.agentId)
      headers[secret.header] = secretsOf(env.db).unseal(secret.value, secretField(env.agentId, tool.name));
    const res = await env.app.outbound.fetch(req.url, {
      method: req.method,
      headers,
      body: req.body,
      signal: env.signal,
      allowUrl: allowed,
      sensitiveHeaders: secret ? [secret.header] : [],
      timeoutMs: tool.timeout_ms ?? TOOL_TIMEOUT_MS,
      maxBytes: tool.max_bytes ?? TOOL_MAX_BYTES,
    });
    const body = await res.text();
    const ok = res.status >= 200 && res.status < 300;
    const o = {
      status: res.status,
      outcome: ok ? ('ok' as const) : ('http_error' as const),
      duration_ms: ms(),
    };
    audit(env, tool, host, o);
    return {
      ok,
      content: ok
        ? body || `(HTTP ${res.status}, no content)`
        : JSON.stringify({ error: `the tool answered HTTP ${res.status}` }),
      ...o,
    };
  } catch (e) {
    if (!isOutboundError(e) && !env.signal.aborted)
      env.app.log.warn('tool call failed', { tool: tool.name, error: String(e) });
    const o = { status: null, outcome: 'failed' as const, duration_ms: ms() };
    audit(env, tool, host, o);
    return { ok: false, content: JSON.stringify({ error: TOOL_FAILED }), ...o };
  }
}
