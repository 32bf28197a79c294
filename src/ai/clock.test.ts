import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type OllamaStub, startOllamaStub } from '../../tests/peers/ollama-stub.ts';
import { DEFAULT_CONFIG, silentLogger } from '../app/index.ts';
import type { Clock } from '../shared/time.ts';
import type { ChatChunk } from './provider.ts';
import { toCompletion } from './providers/anthropic.ts';
import { type AiRuntime, createAiRuntime } from './runtime.ts';

// The AI runtime reads the injected clock, not the wall clock: providers' `created` stamps and
// the breakers' times follow a pinned clock.
const PINNED = Date.UTC(2030, 0, 2, 3, 4, 5);
const clock: Clock = { now: () => PINNED };
let local: OllamaStub;
let runtime: AiRuntime;

beforeAll(async () => {
  local = await startOllamaStub();
  runtime = await createAiRuntime(
    {
      ...DEFAULT_CONFIG,
      providers: [{ id: 'local', kind: 'ollama', url: local.url, timeout_ms: 1_000 }],
      models: [{ alias: 'default', route: ['local/llama3.2'] }],
    },
    silentLogger,
    clock,
  );
});
afterAll(async () => {
  await runtime.close();
  await local.stop();
});

describe('the AI runtime on a pinned clock', () => {
  test("Ollama's completions and chunks are stamped with the clock's time", async () => {
    const p = runtime.providers.get('local')!;
    const req = { model: 'llama3.2', messages: [{ role: 'user' as const, content: 'hello there' }] };
    const whole = await p.chat(req, new AbortController().signal);
    expect(whole.created).toBe(PINNED / 1000);
    const chunks: ChatChunk[] = [];
    for await (const ch of await p.chatStream(req, new AbortController().signal)) chunks.push(ch);
    expect(chunks.length).toBeGreaterThan(0);
    expect(new Set(chunks.map((c) => c.created))).toEqual(new Set([PINNED / 1000]));
    expect(runtime.clock).toBe(clock);
  });

  test("Anthropic's answers are stamped with the clock's time", () => {
    const raw = {
      id: 'msg_1',
      model: 'claude',
      content: [{ type: 'text', text: 'hi' }],
      stop_reason: 'end_turn',
    };
    expect(toCompletion('anthropic', raw, 'claude', clock).created).toBe(PINNED / 1000);
  });
});

describe('no wall clock under src/ai', () => {
  test('Date.now() appears in no source file of the AI domain (the injected clock does)', async () => {
    const found: string[] = [];
    let scanned = 0;
    for await (const f of new Bun.Glob('**/*.ts').scan({ cwd: import.meta.dir })) {
      if (f.endsWith('.test.ts')) continue;
      scanned++;
      const text = await Bun.file(`${import.meta.dir}/${f}`).text();
      if (/\bDate\.now\b/.test(text)) found.push(f);
    }
    expect(scanned).toBeGreaterThan(10);
    expect(found).toEqual([]);
  });
});
