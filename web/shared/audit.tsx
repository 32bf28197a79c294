import type { Signal } from '@preact/signals';
import { when } from './format.ts';
import { Async, Empty, type Resource, TableWrap } from './ui.tsx';

/** An audit entry as the audit routes answer it (platform and control plane alike). */
export interface AuditEntry {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string;
  details: unknown;
}

/** A page of an audit trail, newest first, with its "Newest" and "Older" buttons (`before`). */
export function AuditEntries({
  r,
  before,
}: {
  r: Resource<{ entries: AuditEntry[]; next_before?: number | null }>;
  before: Signal<number | null>;
}) {
  return (
    <Async r={r} empty={(d) => (d.entries.length ? null : <Empty>No entries match.</Empty>)}>
      {(d) => (
        <>
          <TableWrap>
            <table aria-label="Audit entries">
              <thead>
                <tr>
                  <th scope="col" class="num">
                    #
                  </th>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {d.entries.map((e) => (
                  <tr key={e.seq}>
                    <td class="num">{e.seq}</td>
                    <td>{when(e.ts)}</td>
                    <td>{e.actor}</td>
                    <td>
                      <code>{e.action}</code>
                    </td>
                    <td>{e.target}</td>
                    <td>
                      <code class="details">{JSON.stringify(e.details)}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          <div class="actions">
            {before.value ? (
              <button
                type="button"
                onClick={() => {
                  before.value = null;
                }}
              >
                Newest
              </button>
            ) : null}
            {d.next_before ? (
              <button
                type="button"
                onClick={() => {
                  before.value = d.next_before ?? null;
                }}
              >
                Older
              </button>
            ) : null}
          </div>
        </>
      )}
    </Async>
  );
}
