import { ulid } from 'ulid';

/**
 * Prefixed, time-sortable ids (`plt_01J...`): the prefix says what an id names in logs and
 * URLs; the ULID sorts by creation time, which keeps B-tree inserts at the right edge.
 */
export function newId(
  prefix:
    | 'plt'
    | 'usr'
    | 'op'
    | 'opt'
    | 'key'
    | 'grp'
    | 'scim'
    | 'msg'
    | 'bud'
    | 'inv'
    | 'cnv'
    | 'chm'
    | 'agt'
    | 'kdc'
    | 'lst'
    | 'tcl'
    | 'fed'
    | 'pur'
    | 'pay'
    | 'sub'
    | 'top',
): string {
  return `${prefix}_${ulid().toLowerCase()}`;
}
