/**
 * Searching the marketplace (issue 12 item 7): full-text (FTS5, marketplace.repository.ts) and
 * semantic. A listing's title, summary, tags and category are embedded through the AI service
 * with the instance's embedding model (`knowledge.embedding_model`, as knowledge is: the
 * platform's policy, budgets and metering apply; usage is the listed agent's), when it is listed
 * or edited, and, for listings not embedded yet (or embedded by a model since replaced), a few
 * at a time before a semantic search. Vectors live in listing_vectors (float) and in a
 * binary-quantized sqlite-vec index that proposes candidates for exact rescoring. Hybrid search
 * merges both lists by reciprocal rank fusion (Σ 1/(60 + rank)), as knowledge search does.
 */
import { type AiDeps, embed, platformAiPolicy } from '../ai/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { sha256Hex } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import {
  ensureListingVectorIndex,
  type ListingRow,
  listingVectorHash,
  searchListings,
  semanticListings,
  setListingVector,
  unembeddedListings,
} from './marketplace.repository.ts';

export type SearchMode = 'keyword' | 'semantic' | 'hybrid';
export const SEARCH_MODES: readonly SearchMode[] = ['keyword', 'semantic', 'hybrid'];
/** Listings a search answers. */
const PAGE = 50;
/** Listings embedded before one semantic search (those not embedded yet). */
const CATCH_UP = 32;

const embeddingModel = (c: PlatformRequestContext) => c.app.config.knowledge?.embedding_model ?? null;

/** What of a listing is embedded. */
export const listingText = (l: Pick<ListingRow, 'title' | 'summary' | 'tags' | 'category'>) =>
  `${l.title}\n${l.summary}\n${(JSON.parse(l.tags) as string[]).join(', ')}\n${l.category}`;

async function embedTexts(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string | null,
  model: string,
  texts: string[],
): Promise<number[][]> {
  const p = c.principal;
  const r = await embed(
    deps,
    {
      platform: c.platform,
      db: c.db,
      userId: p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null,
      keyId: p?.kind === 'api_key' ? p.keyId : null,
      agentId,
    },
    platformAiPolicy(c.blueprint()),
    { model, input: texts },
    AbortSignal.timeout(60_000),
  );
  return r.vectors;
}

function store(c: PlatformRequestContext, model: string, rows: ListingRow[], vectors: number[][]): void {
  const dims = vectors[0]?.length ?? 0;
  if (!dims || vectors.some((v) => v.length !== dims)) return;
  c.db.transaction(() => {
    ensureListingVectorIndex(c.db, model, dims);
    for (const [i, l] of rows.entries())
      setListingVector(c.db, l.id, {
        model,
        textHash: sha256Hex(listingText(l)),
        vector: Float32Array.from(vectors[i]!),
      });
  })();
}

/**
 * Embeds a listing (after it was listed or edited) unless its vector is current. Best effort:
 * without an embedding model nothing happens, and a failure is logged (the listing is embedded
 * before a later semantic search instead).
 */
export async function embedListing(deps: AiDeps, c: PlatformRequestContext, l: ListingRow): Promise<void> {
  const model = embeddingModel(c);
  if (!model) return;
  if (listingVectorHash(c.db, l.id, model) === sha256Hex(listingText(l))) return;
  try {
    store(c, model, [l], await embedTexts(deps, c, l.agent_id, model, [listingText(l)]));
  } catch (e) {
    c.app.log.warn('listing not embedded', { listing: l.id, error: String(e) });
  }
}

/**
 * The words of a query as FTS5 expressions, each word quoted and all of them required: first as
 * typed, then with the last word a prefix (search as you type), or null without a word.
 */
export function ftsQuery(q: string): [exact: string, prefix: string] | null {
  const words = (q.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? []).slice(0, 16);
  if (!words.length) return null;
  const quoted = words.map((w) => `"${w}"`);
  return [quoted.join(' AND '), [...quoted.slice(0, -1), `${quoted.at(-1)}*`].join(' AND ')];
}

async function semantic(
  deps: AiDeps,
  c: PlatformRequestContext,
  q: string,
  category: string | null,
): Promise<ListingRow[]> {
  const model = embeddingModel(c);
  if (!model) return [];
  const stale = unembeddedListings(c.db, model, CATCH_UP);
  const texts = [q, ...stale.map(listingText)];
  const vectors = await embedTexts(deps, c, null, model, texts);
  if (stale.length) store(c, model, stale, vectors.slice(1));
  const qv = vectors[0];
  if (!qv) return [];
  return semanticListings(c.db, Float32Array.from(qv), { category, limit: PAGE });
}

/** Reciprocal rank fusion of ranked lists (by listing id). */
function fuse(lists: ListingRow[][]): ListingRow[] {
  const score = new Map<string, { l: ListingRow; s: number }>();
  for (const list of lists)
    list.forEach((l, rank) => {
      const e = score.get(l.id) ?? { l, s: 0 };
      e.s += 1 / (60 + rank + 1);
      score.set(l.id, e);
    });
  return [...score.values()].sort((a, b) => b.s - a.s).map((e) => e.l);
}

/**
 * Published listings for `q` by `mode` (hybrid by default; without an embedding model hybrid
 * is keyword search, and semantic search answers 409 `marketplace.semantic_unavailable`), or the
 * newest ones without a query.
 */
export async function findListings(
  deps: AiDeps,
  c: PlatformRequestContext,
  o: { q: string; category: string | null; mode: SearchMode },
): Promise<ListingRow[]> {
  const q = o.q.trim();
  if (!q) return searchListings(c.db, { match: null, category: o.category, limit: PAGE });
  const match = ftsQuery(q);
  if (o.mode !== 'keyword' && !embeddingModel(c)) {
    if (o.mode === 'semantic')
      throw new AppError(
        'marketplace.semantic_unavailable',
        'mode: semantic search needs an embedding model (knowledge.embedding_model in soulfra.yaml)',
        409,
        [{ path: '/mode', reason: 'no embedding model' }],
      );
    o = { ...o, mode: 'keyword' };
  }
  const keyword = () =>
    match ? searchListings(c.db, { match, category: o.category, limit: PAGE }) : ([] as ListingRow[]);
  if (o.mode === 'keyword') return keyword();
  const sem = await semantic(deps, c, q.slice(0, 500), o.category);
  if (o.mode === 'semantic') return sem;
  return fuse([keyword(), sem]).slice(0, PAGE);
}
