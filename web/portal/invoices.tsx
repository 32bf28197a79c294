import { api } from '../shared/api.ts';
import { type InvoiceSummary, InvoiceTable } from '../shared/invoice-table.tsx';
import { Async, Empty, useResource } from '../shared/ui.tsx';

/** The user's monthly invoices on /app/billing (issue 13 item 5). */
export function InvoicesSection() {
  const r = useResource(() => api<{ invoices: InvoiceSummary[] }>('GET', '/api/v1/billing/invoices'), []);
  return (
    <section aria-labelledby="invoices-h">
      <h2 id="invoices-h">Invoices</h2>
      <Async r={r}>
        {(d) =>
          d.invoices.length ? (
            <InvoiceTable invoices={d.invoices} />
          ) : (
            <Empty>No invoices yet: they are issued monthly.</Empty>
          )
        }
      </Async>
    </section>
  );
}
