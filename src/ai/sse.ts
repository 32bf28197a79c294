import type { ChatChunk } from './provider.ts';

const enc = new TextEncoder();
const DONE = enc.encode('data: [DONE]\n\n');

/** One server-sent event carrying `data` as JSON. */
function event(data: unknown): Uint8Array {
  return enc.encode(`data: ${JSON.stringify(data)}\n\n`);
}

/** The headers of a chat completion's SSE answer (besides the route's). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
} as const;

/**
 * OpenAI's SSE framing of a chat stream: each chunk as `data: {json}`, then `data: [DONE]`. A
 * failure of the stream (a stall, the upstream failing mid-stream) ends it with an error event
 * and no `[DONE]`: after the first byte nothing falls back. The client going away (cancel)
 * returns the iterator, which ends the call upstream.
 */
export function sseStream(
  chunks: AsyncIterator<ChatChunk>,
  clientSignal: AbortSignal,
): ReadableStream<Uint8Array> {
  let ended = false;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (ended) return;
      try {
        const r = await chunks.next();
        if (r.done) {
          ended = true;
          ctrl.enqueue(DONE);
          ctrl.close();
          return;
        }
        ctrl.enqueue(event(r.value));
      } catch (e) {
        ended = true;
        const message = clientSignal.aborted ? 'client went away' : (e as Error).message;
        ctrl.enqueue(
          event({ error: { message, type: 'api_error', param: null, code: 'ai.stream_interrupted' } }),
        );
        ctrl.close();
      }
    },
    cancel() {
      ended = true;
      void chunks.return?.();
    },
  });
}
