/**
 * The provider port: every model backend (Ollama, ONNX in process, OpenAI-compatible,
 * Anthropic) speaks OpenAI's wire shapes to the router, whatever it speaks upstream.
 */

/** Where a provider runs: on this machine's network, or a cloud service (policy cares). */
export type ProviderLocation = 'on_prem' | 'cloud';

/** The kinds of provider the configuration may name. */
export type ProviderKind = 'ollama' | 'onnx' | 'openai' | 'anthropic';

/** One message of a chat, in OpenAI's shape (content may be text or parts; tool calls pass through). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string | null | Array<{ type: string; text?: string; [k: string]: unknown }>;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

/** A tool call an assistant message makes (OpenAI shape). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * A chat request as the router hands it to a provider: `model` is the provider's own model
 * name (the part after `provider/` in a route), the rest is OpenAI's request body.
 */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  stop?: string | string[];
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: unknown } }>;
  tool_choice?: unknown;
  response_format?: unknown;
  seed?: number;
  user?: string;
}

/** Token counts as the provider reported them (OpenAI's names). */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A whole (non-streamed) chat completion, OpenAI's `chat.completion` object. */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] };
    finish_reason: 'stop' | 'length' | 'tool_calls' | 'content_filter' | null;
  }>;
  usage: Usage;
}

/** One streamed piece, OpenAI's `chat.completion.chunk` object (the last may carry usage). */
export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: {
      role?: 'assistant';
      content?: string | null;
      tool_calls?: Array<Partial<ToolCall> & { index: number }>;
    };
    finish_reason: 'stop' | 'length' | 'tool_calls' | 'content_filter' | null;
  }>;
  usage?: Usage | null;
}

/** An embeddings request: the provider's model and one or more inputs. */
export interface EmbeddingsRequest {
  model: string;
  input: string[];
}

/** Embeddings, one vector per input, in input order. */
export interface EmbeddingsResult {
  vectors: number[][];
  usage: { prompt_tokens: number; total_tokens: number };
}

/**
 * Why an upstream call failed. `retryable` failures (refused connection, timeout, 429, 5xx,
 * malformed answer) let the router try the next provider, but only before the first byte went
 * to the client; the others (400-class: the request itself is bad) go back to the client.
 */
export class UpstreamError extends Error {
  readonly kind: 'connect' | 'timeout' | 'rate_limited' | 'server' | 'client' | 'malformed' | 'unsupported';
  readonly status: number | undefined;
  readonly retryable: boolean;
  readonly provider: string;

  constructor(
    provider: string,
    kind: UpstreamError['kind'],
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'UpstreamError';
    this.provider = provider;
    this.kind = kind;
    this.status = opts.status;
    this.retryable = kind !== 'client' && kind !== 'unsupported';
  }
}

/**
 * A model backend. Calls take an AbortSignal (client gone, or the router's timeout).
 * `chatStream` resolves only once the first chunk has arrived from upstream, so that a failure
 * before any byte reaches the client can still fall back; a failure after that surfaces from
 * the iterator and ends the client's stream with an error event.
 */
export interface Provider {
  readonly id: string;
  readonly kind: ProviderKind;
  readonly location: ProviderLocation;
  chat(req: ChatRequest, signal: AbortSignal): Promise<ChatCompletion>;
  chatStream(req: ChatRequest, signal: AbortSignal): Promise<AsyncIterable<ChatChunk>>;
  embeddings(req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResult>;
  /** A cheap liveness check for the health loop (true: up). */
  health(signal: AbortSignal): Promise<boolean>;
  /** Releases sockets, sessions, models. */
  close?(): Promise<void>;
}

/** One provider's entry of the instance configuration (`providers:` in soulfra.yaml). */
export interface ProviderConfig {
  id: string;
  kind: ProviderKind;
  url?: string;
  api_key_env?: string;
  location?: ProviderLocation;
  models_dir?: string;
  /** Per-call timeout before the first byte, in ms (default 30,000). */
  timeout_ms?: number;
}
