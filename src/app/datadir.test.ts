import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../shared/errors.ts';
import {
  currentLibcHost,
  type FlockFn,
  type LibcHost,
  libcCandidates,
  lockDataDir,
  resolveFlock,
} from './datadir.ts';

const host = (h: Partial<LibcHost>): LibcHost => ({
  platform: 'linux',
  arch: 'x64',
  glibcVersion: undefined,
  exists: () => false,
  override: undefined,
  ...h,
});

/** A fake dlopen: records every name asked for; loads only the names given. */
function fakeLoader(loads: string[]) {
  const asked: string[] = [];
  const flock: FlockFn = () => 0;
  return {
    asked,
    load: (name: string) => {
      asked.push(name);
      if (!loads.includes(name)) throw new Error(`${name}: cannot open shared object file`);
      return flock;
    },
  };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the C library behind the data-dir lock', () => {
  test('glibc, musl, macOS and FreeBSD each ask for their own library first', () => {
    const glibc = fakeLoader(['libc.so.6']);
    resolveFlock(host({ glibcVersion: '2.36' }), glibc.load);
    expect(glibc.asked).toEqual(['libc.so.6']);

    // Alpine (musl, x86_64): no glibc in the process report, musl's loader on disk.
    const alpine = fakeLoader(['libc.musl-x86_64.so.1']);
    resolveFlock(host({ exists: (p) => p === '/lib/ld-musl-x86_64.so.1' }), alpine.load);
    expect(alpine.asked).toEqual(['libc.musl-x86_64.so.1']);

    // musl on arm64 without the libc.musl-* name: its loader is its libc.
    const arm = fakeLoader(['/lib/ld-musl-aarch64.so.1']);
    resolveFlock(host({ arch: 'arm64', exists: (p) => p === '/lib/ld-musl-aarch64.so.1' }), arm.load);
    expect(arm.asked).toEqual(['libc.musl-aarch64.so.1', '/lib/ld-musl-aarch64.so.1']);

    const mac = fakeLoader(['libSystem.B.dylib']);
    resolveFlock(host({ platform: 'darwin', arch: 'arm64' }), mac.load);
    expect(mac.asked).toEqual(['libSystem.B.dylib']);

    const bsd = fakeLoader(['libc.so.7']);
    resolveFlock(host({ platform: 'freebsd' }), bsd.load);
    expect(bsd.asked).toEqual(['libc.so.7']);
  });

  test('the candidates in order, with the SOULFRA_LIBC override first', () => {
    expect(libcCandidates(host({ glibcVersion: '2.36' }))).toEqual([
      'libc.so.6',
      'libc.musl-x86_64.so.1',
      '/lib/ld-musl-x86_64.so.1',
    ]);
    expect(libcCandidates(host({ exists: () => true }))).toEqual([
      'libc.musl-x86_64.so.1',
      '/lib/ld-musl-x86_64.so.1',
      'libc.so.6',
    ]);
    // Linux with neither sign: glibc first, then musl.
    expect(libcCandidates(host({}))[0]).toBe('libc.so.6');
    expect(libcCandidates(host({ platform: 'darwin', override: '/opt/lib/libc.dylib' }))).toEqual([
      '/opt/lib/libc.dylib',
      'libSystem.B.dylib',
      '/usr/lib/libSystem.B.dylib',
    ]);
    expect(libcCandidates(host({ platform: 'win32' }))).toEqual([]);
  });

  test('glibc missing on a glibc-less system: the next candidate is tried', () => {
    const l = fakeLoader(['/lib/ld-musl-x86_64.so.1']);
    resolveFlock(host({}), l.load);
    expect(l.asked).toEqual(['libc.so.6', 'libc.musl-x86_64.so.1', '/lib/ld-musl-x86_64.so.1']);
  });

  test('when nothing loads, the data dir is refused with a clear error naming what was tried', () => {
    const l = fakeLoader([]);
    let e: unknown = null;
    try {
      resolveFlock(host({ platform: 'darwin', arch: 'arm64' }), l.load);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('datadir.lock_unavailable');
    expect((e as AppError).message).toContain('darwin/arm64');
    expect((e as AppError).message).toContain('libSystem.B.dylib (libSystem.B.dylib: cannot open');
    expect((e as AppError).message).toContain('SOULFRA_LIBC');
    expect(l.asked).toEqual(['libSystem.B.dylib', '/usr/lib/libSystem.B.dylib']);
    const none = fakeLoader([]);
    expect(() => resolveFlock(host({ platform: 'win32' }), none.load)).toThrow('tried nothing');
  });

  test('this machine: detected as it is, and the real flock excludes a second holder', () => {
    const h = currentLibcHost();
    expect(h.platform).toBe(process.platform);
    if (process.platform === 'linux' && h.glibcVersion !== undefined)
      expect(libcCandidates(h)[0]).toBe(h.override ?? 'libc.so.6');
    const dir = mkdtempSync(join(tmpdir(), 'soulfra-lock-'));
    dirs.push(dir);
    const first = lockDataDir(join(dir, 'data'));
    expect('lock' in first).toBe(true);
    // Another open file description of the same lock file (as another process would have).
    expect(lockDataDir(join(dir, 'data'))).toEqual({ heldBy: process.pid });
    if ('lock' in first) first.lock.release();
    const again = lockDataDir(join(dir, 'data'));
    expect('lock' in again).toBe(true);
    if ('lock' in again) again.lock.release();
  });

  test('an injected flock is the one used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'soulfra-lock-'));
    dirs.push(dir);
    const ops: number[] = [];
    const held = lockDataDir(join(dir, 'data'), {
      flock: (_fd, op) => {
        ops.push(op);
        return -1;
      },
    });
    expect(held).toEqual({ heldBy: null });
    expect(ops).toEqual([2 | 4]);
  });
});
