import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type { Stream } from '@anthropic-ai/sdk/core/streaming';
import { type Clock, systemClock } from '../../shared/time.ts';
import {
  type ChatChunk,
  type ChatCompletion,
  type ChatMessage,
  type ChatRequest,
  type Provider,
  type ProviderConfig,
  type ToolCall,
  UpstreamError,
  type Usage,
} from '../provider.ts';
import { abortedError, answeredUp, endedEarly, fromStatus, primeStream, sdkOptions } from './openai.ts';

/** Anthropic requires `max_tokens`; OpenAI's requests may leave it out. */
export const DEFAULT_MAX_TOKENS = 1024;

/**
 * Anthropic's Messages API through the official `@anthropic-ai/sdk`, unchanged, behind OpenAI's
 * wire shapes: requests are mapped to Messages requests and answers (whole or streamed) back to
 * chat completions. The SDK never retries (fallback is the router's job). Anthropic has no
 * embeddings: those answer `unsupported` without a request.
 */
export function createAnthropicProvider(cfg: ProviderConfig, clock: Clock = systemClock): Provider {
  const client = new Anthropic(sdkOptions(cfg, 'https://api.anthropic.com'));
  const fail = (e: unknown, signal: AbortSignal) => mapAnthropicError(cfg.id, e, signal);

  return {
    id: cfg.id,
    kind: 'anthropic',
    location: cfg.location ?? 'cloud',

    async chat(req, signal) {
      const params = toAnthropicRequest(cfg.id, req);
      let raw: unknown;
      try {
        raw = await client.messages.create({ ...params, stream: false }, { signal });
      } catch (e) {
        throw fail(e, signal);
      }
      return toCompletion(cfg.id, raw, req.model, clock);
    },

    async chatStream(req, signal) {
      const params = toAnthropicRequest(cfg.id, req);
      async function* chunks(): AsyncGenerator<ChatChunk> {
        let stream: Stream<Anthropic.RawMessageStreamEvent>;
        try {
          stream = await client.messages.create({ ...params, stream: true }, { signal });
        } catch (e) {
          throw fail(e, signal);
        }
        const it = stream[Symbol.asyncIterator]();
        const state = newStreamState(req.model, clock);
        let ended = false;
        try {
          while (true) {
            let next: IteratorResult<Anthropic.RawMessageStreamEvent>;
            try {
              next = await it.next();
            } catch (e) {
              ended = true;
              throw fail(e, signal);
            }
            if (next.done) {
              ended = true;
              if (signal.aborted || !state.stopped) {
                throw endedEarly(cfg.id, signal, 'the stream ended before message_stop');
              }
              return;
            }
            yield* toChunks(state, next.value);
          }
        } finally {
          // The consumer stopped early: abort the upstream request.
          if (!ended) {
            stream.controller.abort();
            await it.return?.().catch(() => {});
          }
        }
      }
      return primeStream(cfg.id, chunks(), signal);
    },

    async embeddings() {
      throw new UpstreamError(cfg.id, 'unsupported', `${cfg.id}: Anthropic has no embeddings API`);
    },

    async health(signal) {
      try {
        await client.models.list({ limit: 1 }, { signal });
        return true;
      } catch (e) {
        // A 4xx other than 429 means a server answered (some OpenAI-compatible servers have no
        // model list): it is up. Refused, timed out, 429 and 5xx mean it is not.
        return answeredUp(e);
      }
    },
  };
}

/** Maps anything the Anthropic SDK throws to an UpstreamError (or the abort of a client gone). */
export function mapAnthropicError(provider: string, e: unknown, signal: AbortSignal): unknown {
  if (e instanceof UpstreamError) return e;
  if (signal.aborted) return abortedError(provider, signal, e);
  if (e instanceof APIConnectionTimeoutError) {
    return new UpstreamError(provider, 'timeout', `${provider} did not answer in time`, { cause: e });
  }
  if (e instanceof APIUserAbortError) {
    return new UpstreamError(provider, 'timeout', `${provider}: the request was aborted`, { cause: e });
  }
  if (e instanceof APIConnectionError) {
    return new UpstreamError(provider, 'connect', `${provider} could not be reached: ${e.message}`, {
      cause: e,
    });
  }
  if (e instanceof APIError)
    return fromStatus(provider, e.status, e.apiMessage ?? e.message, e.type ?? null, e);
  if (e instanceof SyntaxError) {
    return new UpstreamError(
      provider,
      'malformed',
      `${provider} answered something that is not JSON: ${e.message}`,
      {
        cause: e,
      },
    );
  }
  return new UpstreamError(
    provider,
    'malformed',
    `${provider} failed: ${(e as Error)?.message ?? String(e)}`,
    {
      cause: e,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// OpenAI request → Anthropic Messages request

type Block = Anthropic.ContentBlockParam;
type Turn = { role: 'user' | 'assistant'; content: Block[] };
type Part = Exclude<ChatMessage['content'], string | null>[number];

/** The text of a message's content (a string, or its text parts joined). */
function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
}

const DATA_URI = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/s;

/** One OpenAI content part as an Anthropic block (text, image, PDF document). */
function partToBlock(provider: string, p: Part): Block {
  if (p.type === 'text') return { type: 'text', text: String(p.text ?? '') };
  if (p.type === 'image_url') {
    const url = String((p.image_url as { url?: unknown } | undefined)?.url ?? '');
    const m = DATA_URI.exec(url);
    if (m) {
      return {
        type: 'image',
        source: { type: 'base64', media_type: m[1] as 'image/png', data: m[2]! },
      };
    }
    return { type: 'image', source: { type: 'url', url } };
  }
  if (p.type === 'file') {
    const m = DATA_URI.exec(String((p.file as { file_data?: unknown } | undefined)?.file_data ?? ''));
    if (m && m[1] === 'application/pdf') {
      return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: m[2]! } };
    }
  }
  throw new UpstreamError(
    provider,
    'unsupported',
    `${provider}: content parts of type '${p.type}' cannot be sent to Anthropic`,
  );
}

/** The blocks of a user message's content. */
function userBlocks(provider: string, content: ChatMessage['content']): Block[] {
  if (typeof content === 'string') return content.length > 0 ? [{ type: 'text', text: content }] : [];
  return (content ?? []).map((p) => partToBlock(provider, p));
}

/** A tool call's arguments (a JSON string) as the object Anthropic's `tool_use.input` is. */
function parseArguments(provider: string, call: ToolCall): Record<string, unknown> {
  const args = call.function.arguments;
  if (args === undefined || args.trim() === '') return {};
  try {
    const v = JSON.parse(args) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // falls through
  }
  throw new UpstreamError(
    provider,
    'client',
    `${provider}: the arguments of tool call '${call.id}' are not a JSON object`,
  );
}

/** OpenAI's `tool_choice` as Anthropic's, or undefined when there is nothing to say. */
function toolChoiceOf(choice: unknown): Anthropic.ToolChoice | undefined {
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any' };
  const name = (choice as { function?: { name?: unknown } } | null)?.function?.name;
  if (typeof name === 'string') return { type: 'tool', name };
  return undefined;
}

/**
 * An OpenAI chat request as a Messages request: system and developer messages become `system`;
 * user and assistant turns keep their text and parts; assistant tool calls become `tool_use`
 * blocks (arguments parsed); tool messages become `tool_result` blocks of a user turn;
 * consecutive turns of one role are merged (tool results first, as Anthropic requires).
 * `max_tokens` (or `max_completion_tokens`) defaults to 1024; `stop` becomes `stop_sequences`;
 * `user` becomes `metadata.user_id`. OpenAI-only fields (seed, response_format, temperature,
 * top_p, which the Messages API of this SDK no longer takes) are left out.
 */
export function toAnthropicRequest(
  provider: string,
  req: ChatRequest,
): Anthropic.MessageCreateParamsNonStreaming {
  const system: string[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const m of req.messages) {
    switch (m.role) {
      case 'system':
      case 'developer': {
        const t = textOf(m.content);
        if (t.length > 0) system.push(t);
        break;
      }
      case 'user':
        push('user', userBlocks(provider, m.content));
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        const t = textOf(m.content);
        if (t.length > 0) blocks.push({ type: 'text', text: t });
        for (const c of m.tool_calls ?? []) {
          blocks.push({
            type: 'tool_use',
            id: c.id,
            name: c.function.name,
            input: parseArguments(provider, c),
          });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool': {
        const result: Anthropic.ToolResultBlockParam = {
          type: 'tool_result',
          tool_use_id: m.tool_call_id ?? '',
          content: textOf(m.content),
        };
        const last = turns.at(-1);
        if (last?.role === 'user') {
          // Tool results go before any text of the same turn.
          const firstOther = last.content.findIndex((b) => b.type !== 'tool_result');
          if (firstOther < 0) last.content.push(result);
          else last.content.splice(firstOther, 0, result);
        } else {
          turns.push({ role: 'user', content: [result] });
        }
        break;
      }
    }
  }

  const extra = req as ChatRequest & { max_completion_tokens?: number; parallel_tool_calls?: boolean };
  const params: Anthropic.MessageCreateParamsNonStreaming = {
    model: req.model,
    max_tokens: req.max_tokens ?? extra.max_completion_tokens ?? DEFAULT_MAX_TOKENS,
    messages: turns,
  };
  if (system.length > 0) params.system = system.join('\n\n');
  if (req.stop !== undefined && req.stop !== null) {
    params.stop_sequences = typeof req.stop === 'string' ? [req.stop] : [...req.stop];
  }
  // temperature and top_p are not sent: the Messages API of this SDK no longer takes them.
  if (typeof req.user === 'string') params.metadata = { user_id: req.user };
  if (req.tools && req.tools.length > 0) {
    params.tools = req.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      input_schema: {
        type: 'object',
        ...((t.function.parameters ?? {}) as Record<string, unknown>),
      } as Anthropic.Tool.InputSchema,
    }));
    const choice = toolChoiceOf(req.tool_choice);
    if (choice) params.tool_choice = choice;
    if (extra.parallel_tool_calls === false && choice && choice.type !== 'none') {
      (choice as Anthropic.ToolChoiceAuto).disable_parallel_tool_use = true;
    }
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// Anthropic answers → OpenAI completions and chunks

type Finish = ChatCompletion['choices'][number]['finish_reason'];

/** Anthropic's stop_reason as OpenAI's finish_reason. */
export function finishOf(stop: string | null | undefined): Finish {
  switch (stop) {
    case null:
    case undefined:
      return null;
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn
      return 'stop';
  }
}

type AnthropicUsage = Partial<
  Record<
    'input_tokens' | 'output_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens',
    number | null
  >
>;

/** Prompt tokens: Anthropic counts cache writes and reads apart from `input_tokens`. */
function promptTokens(u: AnthropicUsage | undefined): number {
  return (u?.input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0);
}

function usageOf(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A Messages answer as a chat completion (anything else is `malformed`). */
export function toCompletion(
  provider: string,
  raw: unknown,
  model: string,
  clock: Clock = systemClock,
): ChatCompletion {
  const m = raw as Partial<Anthropic.Message> | null;
  if (!m || typeof m !== 'object' || !Array.isArray(m.content)) {
    throw new UpstreamError(provider, 'malformed', `${provider} answered something that is not a message`);
  }
  const texts: string[] = [];
  const calls: ToolCall[] = [];
  for (const b of m.content) {
    if (b.type === 'text') texts.push(b.text);
    else if (b.type === 'tool_use') {
      calls.push({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      });
    }
  }
  const u = m.usage as AnthropicUsage | undefined;
  return {
    id: typeof m.id === 'string' ? m.id : '',
    object: 'chat.completion',
    created: Math.floor(clock.now() / 1000),
    model: typeof m.model === 'string' ? m.model : model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: texts.length > 0 ? texts.join('') : calls.length > 0 ? null : '',
          ...(calls.length > 0 ? { tool_calls: calls } : {}),
        },
        finish_reason: finishOf(m.stop_reason),
      },
    ],
    usage: usageOf(promptTokens(u), u?.output_tokens ?? 0),
  };
}

/** What a stream's translation remembers between events. */
interface StreamState {
  id: string;
  model: string;
  created: number;
  prompt: number;
  completion: number;
  /** Anthropic block index → OpenAI tool call index. */
  tools: Map<number, number>;
  stopped: boolean;
}

function newStreamState(model: string, clock: Clock): StreamState {
  return {
    id: '',
    model,
    created: Math.floor(clock.now() / 1000),
    prompt: 0,
    completion: 0,
    tools: new Map(),
    stopped: false,
  };
}

type Delta = ChatChunk['choices'][number]['delta'];

function chunk(s: StreamState, delta: Delta, finish: Finish = null): ChatChunk {
  return {
    id: s.id,
    object: 'chat.completion.chunk',
    created: s.created,
    model: s.model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

/**
 * One stream event as OpenAI chunks: message_start → the role chunk; a tool_use block's start →
 * a tool call (id, name, empty arguments); text_delta → content; input_json_delta → argument
 * pieces; message_delta → the finish_reason; message_stop → the usage chunk (no choices).
 */
export function toChunks(s: StreamState, ev: Anthropic.RawMessageStreamEvent): ChatChunk[] {
  switch (ev.type) {
    case 'message_start': {
      s.id = ev.message.id;
      if (typeof ev.message.model === 'string') s.model = ev.message.model;
      const u = ev.message.usage as AnthropicUsage | undefined;
      s.prompt = promptTokens(u);
      s.completion = u?.output_tokens ?? 0;
      return [chunk(s, { role: 'assistant', content: '' })];
    }
    case 'content_block_start': {
      const b = ev.content_block;
      if (b.type === 'tool_use') {
        const index = s.tools.size;
        s.tools.set(ev.index, index);
        return [
          chunk(s, {
            tool_calls: [{ index, id: b.id, type: 'function', function: { name: b.name, arguments: '' } }],
          }),
        ];
      }
      if (b.type === 'text' && b.text.length > 0) return [chunk(s, { content: b.text })];
      return [];
    }
    case 'content_block_delta': {
      const d = ev.delta;
      if (d.type === 'text_delta') return [chunk(s, { content: d.text })];
      if (d.type === 'input_json_delta') {
        const index = s.tools.get(ev.index);
        if (index === undefined || d.partial_json.length === 0) return [];
        // OpenAI's argument pieces carry neither id nor name.
        const call = { index, function: { arguments: d.partial_json } } as Partial<ToolCall> & {
          index: number;
        };
        return [chunk(s, { tool_calls: [call] })];
      }
      return [];
    }
    case 'message_delta': {
      const u = ev.usage as AnthropicUsage | undefined;
      if (typeof u?.output_tokens === 'number') s.completion = u.output_tokens;
      if (typeof u?.input_tokens === 'number') s.prompt = promptTokens(u);
      return ev.delta.stop_reason ? [chunk(s, {}, finishOf(ev.delta.stop_reason))] : [];
    }
    case 'message_stop':
      s.stopped = true;
      return [{ ...chunk(s, {}), choices: [], usage: usageOf(s.prompt, s.completion) }];
    default:
      return [];
  }
}
