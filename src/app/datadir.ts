import { dlopen, FFIType } from 'bun:ffi';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../shared/errors.ts';

const LOCK_EX = 2;
const LOCK_NB = 4;

/** flock(2) as loaded from the C library. */
export type FlockFn = (fd: number, op: number) => number;
/** Loads `flock` from a library name or path (bun:ffi's `dlopen` in production); throws if it cannot. */
export type FlockLoader = (library: string) => FlockFn;

/** What the C library's name depends on: the OS, the CPU, and (on Linux) glibc or musl. */
export interface LibcHost {
  platform: NodeJS.Platform;
  arch: string;
  /** glibc's version when the process runs on glibc (process.report's glibcVersionRuntime), else undefined. */
  glibcVersion: string | undefined;
  /** Whether a file exists (musl's loader is found by path). */
  exists(path: string): boolean;
  /** `SOULFRA_LIBC`: a library name or path tried first (an unusual system). */
  override: string | undefined;
}

/** musl's name for each CPU (its loader is /lib/ld-musl-<arch>.so.1). */
const MUSL_ARCH: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  arm: 'armhf',
  ia32: 'i386',
  riscv64: 'riscv64',
  ppc64: 'powerpc64le',
  s390x: 's390x',
};

/**
 * The C libraries to try for flock, in order: the override; on macOS libSystem; on Linux
 * glibc's `libc.so.6` when the process runs on glibc, musl's `libc.musl-<arch>.so.1` (Alpine)
 * then its loader `/lib/ld-musl-<arch>.so.1` (which is musl's libc) when that loader exists, and
 * the other family after as a last try; on FreeBSD `libc.so.7`.
 */
export function libcCandidates(h: LibcHost): string[] {
  const out: string[] = h.override ? [h.override] : [];
  if (h.platform === 'darwin') out.push('libSystem.B.dylib', '/usr/lib/libSystem.B.dylib');
  else if (h.platform === 'freebsd') out.push('libc.so.7');
  else if (h.platform === 'linux') {
    const arch = MUSL_ARCH[h.arch] ?? h.arch;
    const loader = `/lib/ld-musl-${arch}.so.1`;
    const musl = [`libc.musl-${arch}.so.1`, loader];
    if (h.glibcVersion !== undefined) out.push('libc.so.6', ...musl);
    else if (h.exists(loader)) out.push(...musl, 'libc.so.6');
    else out.push('libc.so.6', ...musl);
  }
  return [...new Set(out)];
}

/** This process's host, as libcCandidates reads it. */
export function currentLibcHost(): LibcHost {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return {
    platform: process.platform,
    arch: process.arch,
    glibcVersion: header?.glibcVersionRuntime,
    exists: (path) => existsSync(path),
    override: process.env.SOULFRA_LIBC || undefined,
  };
}

/** bun:ffi's loader: `flock(int, int) -> int` from the named library. */
const ffiLoader: FlockLoader = (library) => {
  const lib = dlopen(library, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  return (fd, op) => lib.symbols.flock(fd, op) as number;
};

/**
 * flock(2) from the first candidate library that loads. None loads: no lock can be taken, and
 * the data dir is refused (`datadir.lock_unavailable`, naming what was tried) rather than used
 * without one (two processes on one data dir corrupt it). No pid-file fallback: a pid file goes
 * stale when its process dies and a reused pid makes it lie; flock does neither.
 */
export function resolveFlock(host: LibcHost, load: FlockLoader): FlockFn {
  const tried: string[] = [];
  for (const name of libcCandidates(host)) {
    try {
      return load(name);
    } catch (e) {
      tried.push(`${name} (${(e as Error)?.message ?? e})`);
    }
  }
  throw new AppError(
    'datadir.lock_unavailable',
    `cannot lock the data dir: no C library with flock(2) could be loaded on ${host.platform}/${host.arch}; tried ${tried.join(', ') || 'nothing'}. Set SOULFRA_LIBC to its path`,
    500,
  );
}

// flock(2) through libc: the kernel drops the lock when the process dies, however it dies, so a
// crashed server never leaves a stale lock behind (unlike a pid file). Loaded once per process.
let defaultFlock: FlockFn | null = null;
const processFlock = (): FlockFn => {
  defaultFlock ??= resolveFlock(currentLibcHost(), ffiLoader);
  return defaultFlock;
};

/** A held data-dir lock. */
export interface DataDirLock {
  release(): void;
}

/** The lock file, the control socket and the platforms folder of a data dir. */
export function dataDirPaths(dataDir: string) {
  return {
    lock: join(dataDir, 'soulfra.lock'),
    socket: join(dataDir, 'soulfra.sock'),
    platforms: join(dataDir, 'platforms'),
  };
}

/**
 * Takes the exclusive lock on a data dir (one process owns it), or returns null with the pid of
 * the holder when another process has it. Creates the data dir (owner-only) when missing.
 */
export function lockDataDir(
  dataDir: string,
  opts: { flock?: FlockFn } = {},
): { lock: DataDirLock } | { heldBy: number | null } {
  const flock = opts.flock ?? processFlock();
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new AppError('datadir.unusable', `cannot create data dir ${dataDir}: ${(e as Error).message}`, 500);
  }
  const path = dataDirPaths(dataDir).lock;
  const fd = openSync(path, 'a+', 0o600);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    let pid: number | null = null;
    try {
      pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10) || null;
    } catch {}
    closeSync(fd);
    return { heldBy: pid };
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  let released = false;
  return {
    lock: {
      release() {
        if (released) return;
        released = true;
        // Closing the descriptor drops the flock.
        closeSync(fd);
      },
    },
  };
}

/**
 * Removes what a crash may leave in platforms/: half-built `.tmp-*` databases that never
 * reached their commit point. Call with the lock held.
 */
export function sweepTemporaryFiles(dataDir: string): string[] {
  const dir = dataDirPaths(dataDir).platforms;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const gone = names.filter((n) => n.startsWith('.tmp-'));
  for (const n of gone) rmSync(join(dir, n), { force: true });
  return gone;
}
