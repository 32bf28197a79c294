/**
 * The marketplace's vector index at the repository level (issue 12 item 7): the bit index's
 * candidates rescored exactly give the exact ranking when every listing is a candidate, a
 * category with too few candidates is searched whole, unpublished listings are never answered,
 * and a change of embedding model empties the index. And keyword search's tiers: title before
 * elsewhere, the words as typed before the last one as a prefix (search as you type).
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { migrate, TENANT_MIGRATIONS } from '../db/index.ts';
import { ftsQuery } from './listing-search.service.ts';
import {
  ensureListingVectorIndex,
  insertListing,
  listingVectorIndex,
  searchListings,
  semanticListings,
  setListingStatus,
  setListingVector,
} from './marketplace.repository.ts';

const DIMS = 64;

/** A seeded vector: deterministic data, so a failure reproduces. */
function vector(seed: number): Float32Array {
  let s = seed * 2654435761;
  const v = new Float32Array(DIMS);
  for (let i = 0; i < DIMS; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    v[i] = s / 2147483648 - 0.5;
  }
  return v;
}

const cosine = (a: Float32Array, b: Float32Array) => {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return 1 - ab / Math.sqrt(aa * bb);
};

function marketplace(
  n: number,
  categoryOf: (i: number) => string,
  text: (i: number) => { title: string; summary: string } = (i) => ({
    title: `Listing ${i}`,
    summary: 'A listing.',
  }),
) {
  const db = new Database(':memory:');
  migrate(db, TENANT_MIGRATIONS, 'test');
  ensureListingVectorIndex(db, 'm1', DIMS);
  const vectors = new Map<string, Float32Array>();
  for (let i = 0; i < n; i++) {
    const id = `lst_${i}`;
    insertListing(db, {
      id,
      agent_id: `agt_${i}`,
      version: 1,
      ...text(i),
      category: categoryOf(i),
      tags: '[]',
      price_model: 'free',
      price_minor: 0,
      currency: 'usd',
      status: 'published',
      created_by: 'test',
      created_at: i,
      updated_at: i,
    });
    const v = vector(i + 1);
    vectors.set(id, v);
    setListingVector(db, id, { model: 'm1', textHash: `h${i}`, vector: v });
  }
  const exact = (q: Float32Array, ids: string[]) =>
    [...ids].sort((a, b) => cosine(vectors.get(a)!, q) - cosine(vectors.get(b)!, q));
  return { db, vectors, exact };
}

describe('semantic listing search', () => {
  test('with every listing a candidate, the answer is the exact cosine ranking', () => {
    const m = marketplace(96, () => 'general');
    const q = vector(1000);
    const got = semanticListings(m.db, q, { category: null, limit: 10, candidates: 96 }).map((l) => l.id);
    expect(got).toEqual(m.exact(q, [...m.vectors.keys()]).slice(0, 10));
  });

  test('a category with too few candidates is searched whole, exactly', () => {
    // Two listings in 'rare', 94 elsewhere; 16 candidates rarely hold both.
    const m = marketplace(96, (i) => (i === 7 || i === 60 ? 'rare' : 'general'));
    for (let s = 0; s < 5; s++) {
      const q = vector(2000 + s);
      const got = semanticListings(m.db, q, { category: 'rare', limit: 5, candidates: 16 }).map((l) => l.id);
      expect(got).toEqual(m.exact(q, ['lst_7', 'lst_60']));
    }
  });

  test('a listing no longer published is not answered; published again, it is', () => {
    const m = marketplace(32, () => 'general');
    const q = m.vectors.get('lst_5')!;
    expect(semanticListings(m.db, q, { category: null, limit: 1 })[0]?.id).toBe('lst_5');
    setListingStatus(m.db, 'lst_5', 'suspended', 1);
    const after = semanticListings(m.db, q, { category: null, limit: 32, candidates: 32 }).map((l) => l.id);
    expect(after).not.toContain('lst_5');
    expect(after).toHaveLength(31);
    setListingStatus(m.db, 'lst_5', 'published', 2);
    expect(semanticListings(m.db, q, { category: null, limit: 1 })[0]?.id).toBe('lst_5');
  });

  test('a new embedding model empties the index until listings are embedded again', () => {
    const m = marketplace(8, () => 'general');
    ensureListingVectorIndex(m.db, 'm2', DIMS);
    expect(listingVectorIndex(m.db)).toEqual({ model: 'm2', dims: DIMS });
    expect(semanticListings(m.db, vector(1), { category: null, limit: 5 })).toEqual([]);
    setListingVector(m.db, 'lst_3', { model: 'm2', textHash: 'x', vector: vector(4) });
    expect(semanticListings(m.db, vector(4), { category: null, limit: 5 }).map((l) => l.id)).toEqual([
      'lst_3',
    ]);
  });
});

describe('keyword listing search', () => {
  const texts = [
    { title: 'Taxes made simple', summary: 'Deductions.' }, // 0: title, prefix of the word only
    { title: 'Travel planner', summary: 'Trips and tax refunds abroad.' }, // 1: summary, exact
    { title: 'Tax helper', summary: 'Returns.' }, // 2: title, exact
    { title: 'Garden coach', summary: 'Plants.' }, // 3: no match
  ];
  const m = () =>
    marketplace(
      texts.length,
      () => 'general',
      (i) => texts[i]!,
    );
  const ids = (db: Database, q: string, limit = 10) =>
    searchListings(db, { match: ftsQuery(q), category: null, limit }).map((l) => l.id);

  test('tiers: title as typed, title by prefix, elsewhere as typed, elsewhere by prefix', () => {
    const { db } = m();
    expect(ids(db, 'tax')).toEqual(['lst_2', 'lst_0', 'lst_1']);
    // A page filled by the words as typed reads no prefix.
    expect(ids(db, 'tax', 1)).toEqual(['lst_2']);
    // A partial word finds by prefix only; every word must match.
    expect(ids(db, 'tra')).toEqual(['lst_1']);
    expect(ids(db, 'travel tax')).toEqual(['lst_1']);
    expect(ids(db, 'garden tax')).toEqual([]);
  });

  test("the query language is never the user's: operators and quotes are words", () => {
    const { db } = m();
    expect(ftsQuery('tax OR "x" NEAR(')).toEqual(['"tax" AND "or" AND "near"', '"tax" AND "or" AND "near"*']);
    expect(ids(db, 'tax OR garden')).toEqual([]);
    expect(ftsQuery('- * !')).toBeNull();
  });
});
