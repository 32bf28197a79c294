import { describe, expect, test } from 'bun:test';
import type { ChatChunk } from './provider.ts';
import { sseStream } from './sse.ts';

const chunk = (content: string): ChatChunk => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

/** An iterator over `items`, throwing `fail` after them when given, recording `return`. */
function source(items: ChatChunk[], fail?: Error) {
  let i = 0;
  const state = { returned: 0 };
  const it: AsyncIterator<ChatChunk> = {
    async next() {
      if (i < items.length) return { done: false, value: items[i++]! };
      if (fail) throw fail;
      return { done: true, value: undefined };
    },
    async return() {
      state.returned++;
      return { done: true, value: undefined };
    },
  };
  return { it, state };
}

describe("OpenAI's SSE framing", () => {
  test('each chunk as a data event, then [DONE]', async () => {
    const { it } = source([chunk('a'), chunk('b')]);
    const text = await new Response(sseStream(it, new AbortController().signal)).text();
    expect(text).toBe(
      `data: ${JSON.stringify(chunk('a'))}\n\ndata: ${JSON.stringify(chunk('b'))}\n\ndata: [DONE]\n\n`,
    );
  });

  test('a failure mid-stream ends it with an error event and no [DONE]; a client gone is named so', async () => {
    const { it } = source([chunk('a')], new Error('the provider stalled for 5 ms mid-stream'));
    const text = await new Response(sseStream(it, new AbortController().signal)).text();
    expect(text).toBe(
      `data: ${JSON.stringify(chunk('a'))}\n\ndata: ${JSON.stringify({ error: { message: 'the provider stalled for 5 ms mid-stream', type: 'api_error', param: null, code: 'ai.stream_interrupted' } })}\n\n`,
    );
    const gone = new AbortController();
    gone.abort();
    const { it: it2 } = source([], new Error('aborted'));
    expect(await new Response(sseStream(it2, gone.signal)).text()).toContain('"message":"client went away"');
  });

  test('the reader cancelling returns the iterator (which ends the call upstream)', async () => {
    const { it, state } = source([chunk('a'), chunk('b')]);
    const reader = sseStream(it, new AbortController().signal).getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
    expect(state.returned).toBe(1);
  });
});
