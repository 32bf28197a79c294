/**
 * The ONNX provider: embeddings (and a safety-classifier hook) computed in this process through
 * onnxruntime-node. This module is the only one that imports `onnxruntime-node`; the runtime
 * imports it lazily, so the executable runs without the ONNX library unless an ONNX provider
 * is configured.
 *
 * Model folder convention (`models_dir` of a `kind: onnx` provider):
 *
 *     <models_dir>/<name>/model.onnx
 *     <models_dir>/<name>/tokenizer.json
 *
 * `<name>` is the model name a route uses (`provider/<name>`): letters, digits, `.`, `_`, `-`.
 * Models are discovered on each call (a folder dropped in is usable without a restart); a
 * model's session is created on first use and cached until `close()`.
 *
 * tokenizer.json, either
 *  - word-level: `{ "type": "word", "vocab": { "[UNK]": 0, "hello": 1, ... }, "lowercase": true,
 *    "max_length": 128, "pad_id": 0, "unk_id": 0 }`. Text is split into runs of letters and
 *    digits, and every other non-space character is a token of its own; a word missing from
 *    the vocabulary becomes `unk_id` (default: the id of "[UNK]"). Defaults: lowercase true,
 *    max_length 128, pad_id 0. No special tokens are added.
 *  - a HuggingFace `tokenizer.json` whose `model.type` is `WordPiece` (BERT, MiniLM exports):
 *    BERT normalization (clean text, CJK spacing, lowercase and accent stripping as the
 *    `normalizer` says), BERT pre-tokenization (whitespace and punctuation), greedy
 *    longest-match WordPiece with the `##` continuation prefix, `[CLS] … [SEP]` around the text
 *    when the post-processor (or, lacking one, the vocabulary) has them, truncation to
 *    `truncation.max_length` (default 512), padding with `padding.pad_id` (default [PAD] or 0).
 *
 * Model inputs: `input_ids` and `attention_mask` (int64 or int32, [batch, seq]), and
 * `token_type_ids` (zeros) when the model declares it; inputs the model does not declare are
 * not fed. A model without `attention_mask` is run one text at a time, so padding never
 * reaches it.
 * Embedding outputs: `sentence_embedding` [batch, dim] (used as is), else `last_hidden_state`
 * or `token_embeddings` [batch, seq, dim] (mean over the tokens the attention mask keeps).
 * Every vector is then L2-normalized.
 * Classifier (createOnnxClassifier): output `logits` [batch, n_labels] → softmax → top label.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  type EmbeddingsRequest,
  type EmbeddingsResult,
  type Provider,
  type ProviderConfig,
  UpstreamError,
} from '../provider.ts';
import type { SafetyClassifier } from '../safety.ts';

/** Texts run through a model at once (more are split into several runs). */
const BATCH = 32;

/** A valid model name: one folder level, no traversal. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

// ---------------------------------------------------------------------------------------------
// Tokenizers

/** Text to token ids; `pad` fills batches. */
export interface Tokenizer {
  readonly pad: number;
  encode(text: string): number[];
}

/** Thrown for a tokenizer.json or model this module cannot use. */
class ModelFormatError extends Error {}

/** Builds a tokenizer from the parsed contents of a tokenizer.json (word-level or WordPiece). */
export function parseTokenizer(json: unknown): Tokenizer {
  if (!isObject(json)) throw new ModelFormatError('tokenizer.json must be a JSON object');
  if (json.type === 'word') return wordTokenizer(json);
  if (isObject(json.model) && json.model.type === 'WordPiece') return wordPieceTokenizer(json);
  throw new ModelFormatError(
    'tokenizer.json: expected {"type":"word",...} or a HuggingFace tokenizer with model.type "WordPiece"',
  );
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function vocabOf(x: unknown, where: string): Map<string, number> {
  if (!isObject(x)) throw new ModelFormatError(`${where} must be an object of token → id`);
  const m = new Map<string, number>();
  for (const [k, v] of Object.entries(x)) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new ModelFormatError(`${where}: id of '${k}' must be a non-negative integer`);
    m.set(k, v);
  }
  if (m.size === 0) throw new ModelFormatError(`${where} is empty`);
  return m;
}

function intOr(x: unknown, dflt: number, what: string, min = 0): number {
  if (x === undefined || x === null) return dflt;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min)
    throw new ModelFormatError(`tokenizer.json: ${what} must be an integer ≥ ${min}`);
  return x;
}

function wordTokenizer(j: Record<string, unknown>): Tokenizer {
  const vocab = vocabOf(j.vocab, 'tokenizer.json vocab');
  const lowercase = j.lowercase !== false;
  const maxLength = intOr(j.max_length, 128, 'max_length', 1);
  const pad = intOr(j.pad_id, 0, 'pad_id');
  const unkDefault = vocab.get('[UNK]');
  if ((j.unk_id === undefined || j.unk_id === null) && unkDefault === undefined) {
    throw new ModelFormatError('tokenizer.json: unk_id is required when the vocabulary has no "[UNK]"');
  }
  const unk = intOr(j.unk_id, unkDefault ?? 0, 'unk_id');
  return {
    pad,
    encode(text) {
      const t = lowercase ? text.toLowerCase() : text;
      const words = t.match(/[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu) ?? [];
      return words.slice(0, maxLength).map((w) => vocab.get(w) ?? unk);
    },
  };
}

/** BERT's punctuation: ASCII non-alphanumerics plus Unicode punctuation. */
function isPunct(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return true;
  return /\p{P}/u.test(ch);
}

function isCjk(c: number): boolean {
  return (
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x20000 && c <= 0x2a6df) ||
    (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) ||
    (c >= 0x2b820 && c <= 0x2ceaf) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x2f800 && c <= 0x2fa1f)
  );
}

/** The special token ids the post-processor puts before and after a single text. */
function specialTokens(
  j: Record<string, unknown>,
  vocab: Map<string, number>,
): { before: number[]; after: number[] } {
  const idOf = (tok: unknown): number => {
    const id = typeof tok === 'string' ? vocab.get(tok) : undefined;
    if (id === undefined)
      throw new ModelFormatError(`tokenizer.json: special token ${String(tok)} is not in the vocabulary`);
    return id;
  };
  const pp = j.post_processor;
  if (isObject(pp) && pp.type === 'BertProcessing' && Array.isArray(pp.cls) && Array.isArray(pp.sep)) {
    return { before: [idOf(pp.cls[0])], after: [idOf(pp.sep[0])] };
  }
  if (isObject(pp) && pp.type === 'TemplateProcessing' && Array.isArray(pp.single)) {
    const before: number[] = [];
    const after: number[] = [];
    let seen = false;
    for (const piece of pp.single) {
      if (!isObject(piece)) continue;
      if (isObject(piece.Sequence)) seen = true;
      else if (isObject(piece.SpecialToken)) (seen ? after : before).push(idOf(piece.SpecialToken.id));
    }
    return { before, after };
  }
  if (pp === undefined || pp === null) {
    const cls = vocab.get('[CLS]');
    const sep = vocab.get('[SEP]');
    if (cls !== undefined && sep !== undefined) return { before: [cls], after: [sep] };
  }
  return { before: [], after: [] };
}

function wordPieceTokenizer(j: Record<string, unknown>): Tokenizer {
  const model = j.model as Record<string, unknown>;
  const vocab = vocabOf(model.vocab, 'tokenizer.json model.vocab');
  const unkToken = typeof model.unk_token === 'string' ? model.unk_token : '[UNK]';
  const unk = vocab.get(unkToken);
  if (unk === undefined)
    throw new ModelFormatError(`tokenizer.json: unk_token '${unkToken}' is not in the vocabulary`);
  const prefix = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : '##';
  const maxChars = intOr(model.max_input_chars_per_word, 100, 'model.max_input_chars_per_word', 1);
  const norm = isObject(j.normalizer) ? j.normalizer : null;
  const bertNorm = norm?.type === 'BertNormalizer';
  const lowercase = bertNorm ? norm.lowercase !== false : false;
  const stripAccents = bertNorm ? (norm.strip_accents ?? lowercase) === true : false;
  const cleanText = bertNorm ? norm.clean_text !== false : false;
  const cjk = bertNorm ? norm.handle_chinese_chars !== false : false;
  const { before, after } = specialTokens(j, vocab);
  const truncation = isObject(j.truncation) ? j.truncation : null;
  const maxLength = intOr(
    truncation?.max_length,
    512,
    'truncation.max_length',
    before.length + after.length + 1,
  );
  const padding = isObject(j.padding) ? j.padding : null;
  const pad = intOr(padding?.pad_id, vocab.get('[PAD]') ?? 0, 'padding.pad_id');

  const normalize = (text: string): string => {
    let out = '';
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      if (
        cleanText &&
        (c === 0 || c === 0xfffd || (/\p{C}/u.test(ch) && ch !== '\t' && ch !== '\n' && ch !== '\r'))
      )
        continue;
      if (cleanText && /\s/u.test(ch)) out += ' ';
      else if (cjk && isCjk(c)) out += ` ${ch} `;
      else out += ch;
    }
    if (stripAccents) out = out.normalize('NFD').replace(/\p{Mn}/gu, '');
    if (lowercase) out = out.toLowerCase();
    return out;
  };

  const pieces = (word: string): number[] => {
    const chars = Array.from(word);
    if (chars.length > maxChars) return [unk];
    const ids: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: number | undefined;
      while (start < end) {
        const sub = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        found = vocab.get(sub);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) return [unk];
      ids.push(found);
      start = end;
    }
    return ids;
  };

  return {
    pad,
    encode(text) {
      const ids: number[] = [];
      const room = maxLength - before.length - after.length;
      for (const chunk of normalize(text).split(/\s+/u)) {
        if (!chunk) continue;
        let word = '';
        const flush = () => {
          if (word) ids.push(...pieces(word));
          word = '';
        };
        for (const ch of chunk) {
          if (isPunct(ch)) {
            flush();
            ids.push(...pieces(ch));
          } else word += ch;
        }
        flush();
        if (ids.length >= room) break;
      }
      return [...before, ...ids.slice(0, room), ...after];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Models

/** The inputs this module knows how to feed. */
const FED_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);

/** A loaded model: its session, its tokenizer, and how to feed it. */
interface LoadedModel {
  session: ort.InferenceSession;
  tokenizer: Tokenizer;
  inputs: Map<string, 'int64' | 'int32'>;
}

async function loadModel(dir: string): Promise<LoadedModel> {
  let tokenizer: Tokenizer;
  try {
    tokenizer = parseTokenizer(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')));
  } catch (e) {
    throw new ModelFormatError(
      `${join(dir, 'tokenizer.json')}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { logSeverityLevel: 3 });
  const inputs = new Map<string, 'int64' | 'int32'>();
  for (const m of session.inputMetadata) {
    const type = m.isTensor && m.type === 'int32' ? 'int32' : 'int64';
    inputs.set(m.name, type);
  }
  const names = [...inputs.keys()];
  const unfed = names.filter((n) => !FED_INPUTS.has(n));
  if (!inputs.has('input_ids') || unfed.length > 0) {
    await session.release();
    throw new ModelFormatError(
      `${join(dir, 'model.onnx')}: inputs must be input_ids and optionally attention_mask, token_type_ids (the model has: ${names.join(', ')})`,
    );
  }
  return { session, tokenizer, inputs };
}

/** Runs a batch of tokenized texts; the outputs by name and the padded length. */
async function runBatch(
  m: LoadedModel,
  batch: readonly number[][],
): Promise<{ out: ort.InferenceSession.ReturnType; seq: number }> {
  const seq = Math.max(1, ...batch.map((ids) => ids.length));
  const n = batch.length * seq;
  const make = (type: 'int64' | 'int32', fill: (row: number, col: number) => number): ort.Tensor => {
    if (type === 'int32') {
      const a = new Int32Array(n);
      for (let r = 0; r < batch.length; r++) for (let c = 0; c < seq; c++) a[r * seq + c] = fill(r, c);
      return new ort.Tensor('int32', a, [batch.length, seq]);
    }
    const a = new BigInt64Array(n);
    for (let r = 0; r < batch.length; r++) for (let c = 0; c < seq; c++) a[r * seq + c] = BigInt(fill(r, c));
    return new ort.Tensor('int64', a, [batch.length, seq]);
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, type] of m.inputs) {
    if (name === 'input_ids') feeds[name] = make(type, (r, c) => batch[r]![c] ?? m.tokenizer.pad);
    else if (name === 'attention_mask') feeds[name] = make(type, (r, c) => (c < batch[r]!.length ? 1 : 0));
    else if (name === 'token_type_ids') feeds[name] = make(type, () => 0);
  }
  return { out: await m.session.run(feeds), seq };
}

function l2normalize(v: number[]): number[] {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  return norm > 0 ? v.map((x) => x / norm) : v;
}

/** Splits texts into runs: one text at a time when the model cannot be told what is padding. */
function batchesOf(m: LoadedModel, tokenized: number[][]): number[][][] {
  const size = m.inputs.has('attention_mask') ? BATCH : 1;
  const out: number[][][] = [];
  for (let i = 0; i < tokenized.length; i += size) out.push(tokenized.slice(i, i + size));
  return out;
}

/** The embedding output a model has, or null. */
function embeddingOutput(session: ort.InferenceSession): string | null {
  for (const name of ['sentence_embedding', 'last_hidden_state', 'token_embeddings']) {
    if (session.outputNames.includes(name)) return name;
  }
  return null;
}

/** One normalized vector per text of the batch. */
function pool(t: ort.Tensor, batch: readonly number[][], seq: number): number[][] {
  const data = t.data as Float32Array;
  if (t.dims.length === 2 && t.dims[0] === batch.length) {
    const dim = t.dims[1]!;
    return batch.map((_, r) => l2normalize(Array.from(data.subarray(r * dim, (r + 1) * dim))));
  }
  if (t.dims.length === 3 && t.dims[0] === batch.length && t.dims[1] === seq) {
    const dim = t.dims[2]!;
    return batch.map((ids, r) => {
      const v = new Array<number>(dim).fill(0);
      for (let c = 0; c < ids.length; c++) {
        const off = (r * seq + c) * dim;
        for (let d = 0; d < dim; d++) v[d]! += data[off + d]!;
      }
      return l2normalize(v.map((x) => x / ids.length));
    });
  }
  throw new Error(`unexpected output shape [${t.dims.join(', ')}]`);
}

/** Names of the models in a folder (sub-folders holding model.onnx and tokenizer.json), sorted. */
export function listOnnxModels(modelsDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(modelsDir);
  } catch {
    return [];
  }
  return entries
    .filter(
      (name) =>
        MODEL_NAME.test(name) &&
        isFile(join(modelsDir, name, 'model.onnx')) &&
        isFile(join(modelsDir, name, 'tokenizer.json')),
    )
    .sort();
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Lazily loaded models, one load per folder even under concurrent first calls. */
class ModelCache {
  private readonly loaded = new Map<string, Promise<LoadedModel>>();

  get(dir: string): Promise<LoadedModel> {
    let p = this.loaded.get(dir);
    if (!p) {
      p = loadModel(dir);
      this.loaded.set(dir, p);
      // A failed load is not cached: the next call tries again (the file may have been fixed).
      p.catch(() => {
        if (this.loaded.get(dir) === p) this.loaded.delete(dir);
      });
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(all.map((p) => p.then((m) => m.session.release()).catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------
// The provider

/** The ONNX provider over `cfg.models_dir` (see the module comment for the folder convention). */
export function createOnnxProvider(cfg: ProviderConfig): Provider {
  const modelsDir = cfg.models_dir;
  const cache = new ModelCache();
  let closed = false;

  const fail = (kind: UpstreamError['kind'], message: string, cause?: unknown) =>
    new UpstreamError(cfg.id, kind, message, { cause });
  const unsupported = async (): Promise<never> => {
    throw fail('unsupported', `provider '${cfg.id}' (onnx) serves embeddings only, not chat`);
  };

  async function model(name: string): Promise<LoadedModel> {
    if (closed) throw fail('server', `provider '${cfg.id}' is closed`);
    if (!modelsDir) throw fail('server', `provider '${cfg.id}' has no models_dir`);
    const available = () => {
      const names = listOnnxModels(modelsDir);
      return names.length ? names.join(', ') : `none in ${modelsDir}`;
    };
    const dir = join(modelsDir, name);
    if (!MODEL_NAME.test(name) || !isFile(join(dir, 'model.onnx')) || !isFile(join(dir, 'tokenizer.json'))) {
      throw fail('client', `unknown onnx model '${name}' on provider '${cfg.id}'; available: ${available()}`);
    }
    try {
      return await cache.get(dir);
    } catch (e) {
      throw fail(
        'server',
        `onnx model '${name}' could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
        e,
      );
    }
  }

  return {
    id: cfg.id,
    kind: 'onnx',
    location: cfg.location ?? 'on_prem',
    chat: unsupported,
    chatStream: unsupported,

    async embeddings(req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResult> {
      signal.throwIfAborted();
      const m = await model(req.model);
      const out = embeddingOutput(m.session);
      if (!out) {
        throw fail(
          'client',
          `onnx model '${req.model}' is not an embedding model (outputs: ${m.session.outputNames.join(', ')}; expected sentence_embedding or last_hidden_state)`,
        );
      }
      const tokenized = req.input.map((t) => m.tokenizer.encode(t));
      const empty = tokenized.findIndex((ids) => ids.length === 0);
      if (empty >= 0) throw fail('client', `input ${empty} has no tokens`);
      const vectors: number[][] = [];
      for (const batch of batchesOf(m, tokenized)) {
        signal.throwIfAborted();
        let r: Awaited<ReturnType<typeof runBatch>>;
        try {
          r = await runBatch(m, batch);
        } catch (e) {
          throw fail(
            'server',
            `onnx model '${req.model}' failed: ${e instanceof Error ? e.message : String(e)}`,
            e,
          );
        }
        try {
          vectors.push(...pool(r.out[out]!, batch, r.seq));
        } catch (e) {
          throw fail(
            'malformed',
            `onnx model '${req.model}' output ${out}: ${e instanceof Error ? e.message : String(e)}`,
            e,
          );
        }
      }
      const tokens = tokenized.reduce((s, ids) => s + ids.length, 0);
      return { vectors, usage: { prompt_tokens: tokens, total_tokens: tokens } };
    },

    async health(): Promise<boolean> {
      return !closed && !!modelsDir && existsSync(modelsDir) && listOnnxModels(modelsDir).length > 0;
    },

    async close(): Promise<void> {
      closed = true;
      await cache.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The classifier hook

/**
 * A safety classifier over one model folder (`model.onnx` + `tokenizer.json`) whose output
 * `logits` is [batch, labels.length]: softmax, then the top label and its probability. A text
 * without tokens gets null (no opinion). The session is created on the first call; `close()`
 * releases it.
 */
export function createOnnxClassifier(
  modelDir: string,
  labels: string[],
): SafetyClassifier & { close(): Promise<void> } {
  if (labels.length === 0) throw new Error('createOnnxClassifier: labels must not be empty');
  const cache = new ModelCache();
  const classify = async (
    text: string,
    signal: AbortSignal,
  ): Promise<{ label: string; score: number } | null> => {
    signal.throwIfAborted();
    const m = await cache.get(modelDir);
    if (!m.session.outputNames.includes('logits')) {
      throw new Error(
        `${join(modelDir, 'model.onnx')}: no 'logits' output (outputs: ${m.session.outputNames.join(', ')})`,
      );
    }
    const ids = m.tokenizer.encode(text);
    if (ids.length === 0) return null;
    const { out } = await runBatch(m, [ids]);
    const t = out.logits!;
    if (t.dims.length !== 2 || t.dims[0] !== 1 || t.dims[1] !== labels.length) {
      throw new Error(
        `${join(modelDir, 'model.onnx')}: logits shape [${t.dims.join(', ')}] does not match ${labels.length} labels`,
      );
    }
    const logits = Array.from(t.data as Float32Array);
    const max = Math.max(...logits);
    const exps = logits.map((x) => Math.exp(x - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    let best = 0;
    for (let i = 1; i < exps.length; i++) if (exps[i]! > exps[best]!) best = i;
    return { label: labels[best]!, score: exps[best]! / sum };
  };
  return Object.assign(classify, { close: () => cache.close() });
}
