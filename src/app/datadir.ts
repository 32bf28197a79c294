import { dlopen, FFIType } from 'bun:ffi';
import {
  closeSync,
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
let libc: { symbols: { flock: (fd: number, op: number) => number } } | null = null;

function flock(fd: number, op: number): number {
  // flock(2) through libc: the kernel drops the lock when the process dies, however it dies,
  // so a crashed server never leaves a stale lock behind (unlike a pid file).
  libc ??= dlopen('libc.so.6', {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  }) as never;
  return libc!.symbols.flock(fd, op);
}

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
export function lockDataDir(dataDir: string): { lock: DataDirLock } | { heldBy: number | null } {
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
