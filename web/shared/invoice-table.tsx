import { moneyMicro } from './format.ts';
import { TableWrap } from './ui.tsx';

/** An invoice as the list shows it (GET /api/v1/billing/invoices). */
export interface InvoiceSummary {
  id: string;
  number: string;
  period: { month: string };
  currency: string;
  total_minor: number;
  status: 'issued' | 'void';
  issued_at: string;
}

const minor = (n: number, currency: string) => moneyMicro(n * 1_000_000, currency);
const link = (id: string, format: 'html' | 'pdf') =>
  `/api/v1/billing/invoices/${encodeURIComponent(id)}?format=${format}`;

/** A table of invoices with links to the printable page and the PDF (the user's, or an admin's list). */
export function InvoiceTable({
  invoices,
  who,
}: {
  invoices: (InvoiceSummary & { billed_to?: string })[];
  who?: boolean;
}) {
  return (
    <TableWrap>
      <table>
        <thead>
          <tr>
            <th scope="col">Number</th>
            <th scope="col">Month</th>
            {who ? <th scope="col">Billed to</th> : null}
            <th scope="col">Total</th>
            <th scope="col">Status</th>
            <th scope="col">Documents</th>
          </tr>
        </thead>
        <tbody>
          {invoices.map((i) => (
            <tr key={i.id}>
              <td>{i.number}</td>
              <td>{i.period.month}</td>
              {who ? <td>{i.billed_to}</td> : null}
              <td>{minor(i.total_minor, i.currency)}</td>
              <td>{i.status === 'void' ? 'credit note' : 'issued'}</td>
              <td>
                <a href={link(i.id, 'html')} target="_blank" rel="noopener">
                  View<span class="visually-hidden"> invoice {i.number}</span>
                </a>{' '}
                ·{' '}
                <a href={link(i.id, 'pdf')} download={`${i.number}.pdf`}>
                  PDF<span class="visually-hidden"> of invoice {i.number}</span>
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
