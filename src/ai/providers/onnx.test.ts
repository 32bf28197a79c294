import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CLASSIFIER_LABELS,
  classifierModel,
  embeddingModel,
  wordTokenizer,
  writeModel,
  writeTestModels,
} from '../../../tests/fixtures/onnx-model.ts';
import { type Provider, UpstreamError } from '../provider.ts';
import { createOnnxClassifier, createOnnxProvider, listOnnxModels, parseTokenizer } from './onnx.ts';

const ROOT = join(import.meta.dir, '..', '..', '..');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');
const S = AbortSignal.timeout(60_000);
const r2 = Math.SQRT1_2;

/** Asserts two vectors are equal to ~1e-6, element by element. */
function expectVector(actual: number[] | undefined, expected: number[]): void {
  expect(actual).toBeDefined();
  expect(actual!.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual![i]).toBeCloseTo(x, 6);
}

/** The UpstreamError a promise rejects with. */
async function upstreamError(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UpstreamError);
    return e as UpstreamError;
  }
  throw new Error('expected the call to fail');
}

/** A HuggingFace-style WordPiece tokenizer.json over the given vocabulary. */
function wordPieceJson(vocab: Record<string, number>, maxLength?: number): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: maxLength
      ? { direction: 'Right', max_length: maxLength, strategy: 'LongestFirst', stride: 0 }
      : null,
    padding: null,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [],
      special_tokens: {},
    },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

let dir: string;
let provider: Provider;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'soulfra-onnx-'));
  writeTestModels(dir);
  // Truncates after two words.
  writeModel(dir, 'tiny-short', embeddingModel(), wordTokenizer({ maxLength: 2 }));
  // A WordPiece tokenizer over the tiny table: [CLS]=2, [SEP]=3, hel=4, ##lo=5.
  writeModel(
    dir,
    'tiny-wp',
    embeddingModel(),
    JSON.stringify(wordPieceJson({ '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, hel: 4, '##lo': 5 })),
  );
  // Not a model: no tokenizer.json.
  mkdirSync(join(dir, 'half'));
  writeFileSync(join(dir, 'half', 'model.onnx'), embeddingModel());
  provider = createOnnxProvider({ id: 'local', kind: 'onnx', models_dir: dir });
});

afterAll(async () => {
  await provider.close?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('onnx embeddings', () => {
  test('one input: mean of its token rows, L2-normalized; prompt_tokens counts tokens', async () => {
    const r = await provider.embeddings({ model: 'tiny', input: ['hello world'] }, S);
    expect(r.vectors.length).toBe(1);
    expectVector(r.vectors[0], [r2, r2, 0, 0]);
    expect(r.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
  });

  test('several inputs come back in input order; padding in the batch changes nothing', async () => {
    const r = await provider.embeddings(
      { model: 'tiny', input: ['hello world cat', 'hello', 'hate', 'hello hello world'] },
      S,
    );
    expect(r.vectors.length).toBe(4);
    const s3 = 1 / Math.sqrt(3);
    expectVector(r.vectors[0], [s3, s3, s3, 0]);
    // 'hello' is padded with two [PAD] rows of 9s in this batch: the mask keeps them out.
    expectVector(r.vectors[1], [1, 0, 0, 0]);
    expectVector(r.vectors[2], [0, 0, 0.6, 0.8]);
    expectVector(r.vectors[3], [2 / Math.sqrt(5), 1 / Math.sqrt(5), 0, 0]);
    expect(r.usage).toEqual({ prompt_tokens: 3 + 1 + 1 + 3, total_tokens: 8 });
    const alone = await provider.embeddings({ model: 'tiny', input: ['hello'] }, S);
    expect(alone.vectors[0]).toEqual(r.vectors[1]!);
  });

  test('unknown words and punctuation map to the [UNK] row; text is lowercased', async () => {
    const r = await provider.embeddings({ model: 'tiny', input: ['zebra', 'Hello, WORLD!'] }, S);
    expectVector(r.vectors[0], [0, 0, 0, 1]);
    // hello , world ! → rows hello + world + 2×[UNK] = [1, 1, 0, 2] / 4.
    const s6 = 1 / Math.sqrt(6);
    expectVector(r.vectors[1], [s6, s6, 0, 2 * s6]);
    expect(r.usage.prompt_tokens).toBe(1 + 4);
  });

  test('max_length truncates, and only the kept tokens are counted', async () => {
    const r = await provider.embeddings({ model: 'tiny-short', input: ['hello world cat hate'] }, S);
    expectVector(r.vectors[0], [r2, r2, 0, 0]);
    expect(r.usage.prompt_tokens).toBe(2);
  });

  test('a model with sentence_embedding and no attention_mask: used as is, run one text at a time', async () => {
    const r = await provider.embeddings({ model: 'tiny-pooled', input: ['hello', 'hello world cat'] }, S);
    const s3 = 1 / Math.sqrt(3);
    expectVector(r.vectors[0], [1, 0, 0, 0]);
    expectVector(r.vectors[1], [s3, s3, s3, 0]);
    expect(r.usage.prompt_tokens).toBe(4);
  });

  test('a model declaring token_type_ids is fed zeros', async () => {
    const r = await provider.embeddings({ model: 'tiny-tt', input: ['cat', 'hello world'] }, S);
    expectVector(r.vectors[0], [0, 0, 1, 0]);
    expectVector(r.vectors[1], [r2, r2, 0, 0]);
  });

  test('a WordPiece tokenizer.json: [CLS] and [SEP] around ## pieces', async () => {
    // [CLS] hel ##lo [SEP] → ids 2 4 5 3 → rows [1,0,0,0] + [0,0,3,4] + [0,0,1,0] + [0,1,0,0].
    const r = await provider.embeddings({ model: 'tiny-wp', input: ['Hello'] }, S);
    const n = Math.sqrt(1 + 1 + 16 + 16);
    expectVector(r.vectors[0], [1 / n, 1 / n, 4 / n, 4 / n]);
    expect(r.usage.prompt_tokens).toBe(4);
  });

  test('an input without tokens is a client error', async () => {
    const e = await upstreamError(provider.embeddings({ model: 'tiny', input: ['hello', '   '] }, S));
    expect(e.kind).toBe('client');
    expect(e.message).toBe('input 1 has no tokens');
  });

  test('an unknown model is a client error listing the available models', async () => {
    for (const name of ['nope', '../tiny', 'half']) {
      const e = await upstreamError(provider.embeddings({ model: name, input: ['hello'] }, S));
      expect(e.kind).toBe('client');
      expect(e.retryable).toBe(false);
      expect(e.provider).toBe('local');
      expect(e.message).toBe(
        `unknown onnx model '${name}' on provider 'local'; available: classifier, tiny, tiny-pooled, tiny-short, tiny-tt, tiny-wp`,
      );
    }
  });

  test('a classifier is not an embedding model', async () => {
    const e = await upstreamError(provider.embeddings({ model: 'classifier', input: ['hello'] }, S));
    expect(e.kind).toBe('client');
    expect(e.message).toBe(
      "onnx model 'classifier' is not an embedding model (outputs: logits; expected sentence_embedding or last_hidden_state)",
    );
  });

  test('a broken model is a server error, and is loaded once it is fixed', async () => {
    const p = createOnnxProvider({ id: 'local2', kind: 'onnx', models_dir: dir });
    writeModel(dir, 'fixme', new Uint8Array([1, 2, 3, 4]));
    try {
      const e = await upstreamError(p.embeddings({ model: 'fixme', input: ['hello'] }, S));
      expect(e.kind).toBe('server');
      expect(e.message.startsWith("onnx model 'fixme' could not be loaded: ")).toBe(true);
      writeModel(dir, 'fixme', embeddingModel());
      const r = await p.embeddings({ model: 'fixme', input: ['world'] }, S);
      expectVector(r.vectors[0], [0, 1, 0, 0]);
    } finally {
      await p.close?.();
      rmSync(join(dir, 'fixme'), { recursive: true, force: true });
    }
  });

  test('close() releases sessions; the provider then refuses calls', async () => {
    const p = createOnnxProvider({ id: 'local3', kind: 'onnx', models_dir: dir });
    const r = await p.embeddings({ model: 'tiny', input: ['cat'] }, S);
    expectVector(r.vectors[0], [0, 0, 1, 0]);
    await p.close?.();
    const e = await upstreamError(p.embeddings({ model: 'tiny', input: ['cat'] }, S));
    expect(e.kind).toBe('server');
    expect(e.message).toBe("provider 'local3' is closed");
    expect(await p.health(S)).toBe(false);
  });

  test('an aborted signal stops the call before it runs', async () => {
    const ac = new AbortController();
    ac.abort(new Error('client gone'));
    await expect(provider.embeddings({ model: 'tiny', input: ['hello'] }, ac.signal)).rejects.toThrow(
      'client gone',
    );
  });
});

describe('onnx provider, other calls', () => {
  test('chat and chatStream are unsupported (not retryable)', async () => {
    const req = { model: 'tiny', messages: [{ role: 'user' as const, content: 'hi' }] };
    for (const call of [provider.chat(req, S), provider.chatStream(req, S)]) {
      const e = await upstreamError(call);
      expect(e.kind).toBe('unsupported');
      expect(e.retryable).toBe(false);
      expect(e.message).toBe("provider 'local' (onnx) serves embeddings only, not chat");
    }
  });

  test('health: true with a models folder holding a model, false otherwise', async () => {
    expect(await provider.health(S)).toBe(true);
    expect(
      await createOnnxProvider({ id: 'x', kind: 'onnx', models_dir: join(dir, 'missing') }).health(S),
    ).toBe(false);
    const empty = mkdtempSync(join(tmpdir(), 'soulfra-onnx-empty-'));
    try {
      expect(await createOnnxProvider({ id: 'x', kind: 'onnx', models_dir: empty }).health(S)).toBe(false);
      mkdirSync(join(empty, 'only-model'));
      writeFileSync(join(empty, 'only-model', 'model.onnx'), embeddingModel());
      expect(await createOnnxProvider({ id: 'x', kind: 'onnx', models_dir: empty }).health(S)).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    expect(await createOnnxProvider({ id: 'x', kind: 'onnx' }).health(S)).toBe(false);
  });

  test('listOnnxModels lists folders with both files, sorted', () => {
    expect(listOnnxModels(dir)).toEqual([
      'classifier',
      'tiny',
      'tiny-pooled',
      'tiny-short',
      'tiny-tt',
      'tiny-wp',
    ]);
    expect(listOnnxModels(join(dir, 'missing'))).toEqual([]);
  });
});

describe('tokenizers', () => {
  test('word-level: letters and digits form words, other characters are tokens, unknowns are unk_id', () => {
    const t = parseTokenizer({
      type: 'word',
      vocab: { '[UNK]': 0, hello: 1, world: 2, '42': 3, '!': 4 },
      pad_id: 9,
    });
    expect(t.pad).toBe(9);
    expect(t.encode('Hello world 42!')).toEqual([1, 2, 3, 4]);
    expect(t.encode('hello-world?')).toEqual([1, 0, 2, 0]);
    expect(t.encode('')).toEqual([]);
    const cased = parseTokenizer({
      type: 'word',
      vocab: { '<unk>': 5, Hello: 1 },
      lowercase: false,
      unk_id: 5,
      max_length: 2,
    });
    expect(cased.encode('Hello hello Hello')).toEqual([1, 5]);
  });

  test('WordPiece: BERT normalization, punctuation split, ## pieces, [UNK] words, truncation', () => {
    const vocab = {
      '[PAD]': 0,
      '[UNK]': 1,
      '[CLS]': 2,
      '[SEP]': 3,
      un: 4,
      '##aff': 5,
      '##able': 6,
      hello: 7,
      ',': 8,
      '!': 9,
      cafe: 10,
    };
    const t = parseTokenizer(wordPieceJson(vocab));
    expect(t.pad).toBe(0);
    expect(t.encode('Unaffable, Café hello!')).toEqual([2, 4, 5, 6, 8, 10, 7, 9, 3]);
    expect(t.encode('unxyz hello')).toEqual([2, 1, 7, 3]);
    expect(t.encode('')).toEqual([2, 3]);
    expect(parseTokenizer(wordPieceJson(vocab, 4)).encode('hello hello hello')).toEqual([2, 7, 7, 3]);
  });

  test('an unusable tokenizer.json is refused with a reason', () => {
    expect(() => parseTokenizer({ model: { type: 'BPE', vocab: {} } })).toThrow(
      'tokenizer.json: expected {"type":"word",...} or a HuggingFace tokenizer with model.type "WordPiece"',
    );
    expect(() => parseTokenizer({ type: 'word', vocab: { hello: 1 } })).toThrow(
      'tokenizer.json: unk_id is required when the vocabulary has no "[UNK]"',
    );
  });
});

describe('onnx classifier hook', () => {
  test('softmax over logits: the top label and its probability', async () => {
    const classify = createOnnxClassifier(join(dir, 'classifier'), [...CLASSIFIER_LABELS]);
    try {
      const sig = 1 / (1 + Math.exp(-1)); // softmax of logits differing by 1
      const hello = await classify('hello', S);
      expect(hello?.label).toBe('safe');
      expect(hello?.score).toBeCloseTo(sig, 6);
      const hate = await classify('HATE', S);
      expect(hate?.label).toBe('toxic');
      expect(hate?.score).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
      // 'you' is [UNK] (a zero row): mean [0, 0, 0, 0.5] → logits [0, 1].
      const you = await classify('you hate', S);
      expect(you?.label).toBe('toxic');
      expect(you?.score).toBeCloseTo(sig, 6);
      expect(await classify('', S)).toBeNull();
    } finally {
      await classify.close();
    }
  });

  test('labels that do not match the logits are refused', async () => {
    const folder = writeModel(mkdtempSync(join(tmpdir(), 'soulfra-onnx-cls-')), 'c', classifierModel());
    const classify = createOnnxClassifier(folder, ['a', 'b', 'c']);
    try {
      await expect(classify('hello', S)).rejects.toThrow('logits shape [1, 2] does not match 3 labels');
    } finally {
      await classify.close();
      rmSync(join(folder, '..'), { recursive: true, force: true });
    }
  });
});

describe('lazy loading', () => {
  /** Imports a module in a fresh Bun and reports whether onnxruntime-node got loaded. */
  function loadsOnnxRuntime(modulePath: string): { cache: boolean; mapped: boolean } {
    const code = `
      await import(${JSON.stringify(modulePath)});
      const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8');
      console.log(JSON.stringify({
        cache: Object.keys(require.cache).some((k) => k.includes('onnxruntime-node')),
        mapped: maps.includes('onnxruntime_binding.node'),
      }));`;
    const p = Bun.spawnSync([BUN, '-e', code], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
    expect(p.exitCode).toBe(0);
    return JSON.parse(p.stdout.toString().trim());
  }

  test('importing src/ai/runtime.ts does not load onnxruntime-node (importing the provider does)', () => {
    expect(loadsOnnxRuntime(join(ROOT, 'src', 'ai', 'runtime.ts'))).toEqual({ cache: false, mapped: false });
    // The control: the same probe sees the library when the module is imported.
    expect(loadsOnnxRuntime(join(ROOT, 'src', 'ai', 'providers', 'onnx.ts'))).toEqual({
      cache: true,
      mapped: true,
    });
  });
});
