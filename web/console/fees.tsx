import { TimeChart } from '../shared/chart.tsx';
import { moneyMicro, monthSeconds, num } from '../shared/format.ts';
import { Async, Empty, TableWrap, Title, useResource } from '../shared/ui.tsx';
import { op } from './session.ts';

/**
 * The operator's fee income (issue 13 item 8): what each platform's ledger says the operator
 * earned, in all and per month (a chart of the monthly total, and the figures as tables).
 */

type Micro = number | string;

interface Fees {
  currency: string;
  platforms: {
    slug: string;
    name: string;
    sales: number;
    refunds: number;
    gross_micro: Micro;
    operator_fees_micro: Micro;
  }[];
}
interface Monthly {
  currency: string;
  platforms: { slug: string; name: string; months: { month: string; operator_fees_micro: Micro }[] }[];
}

export function FeeIncome() {
  const r = useResource(() =>
    Promise.all([op<Fees>('GET', '/billing/fees'), op<Monthly>('GET', '/billing/fees/monthly')]).then(
      ([fees, monthly]) => ({ fees, monthly }),
    ),
  );
  return (
    <>
      <Title>Fee income</Title>
      <p class="muted">
        The operator's fees from each platform's marketplace sales, read from the platform's ledger.
      </p>
      <Async r={r}>
        {({ fees, monthly }) => {
          const cur = fees.currency;
          const months = monthly.platforms[0]?.months.map((m) => m.month) ?? [];
          const total = months.map((_, i) =>
            monthly.platforms.reduce((a, p) => a + Number(p.months[i]?.operator_fees_micro ?? 0), 0),
          );
          return (
            <>
              {months.length ? (
                <TimeChart
                  title="Fee income by month"
                  x={months.map(monthSeconds)}
                  format={(v) => moneyMicro(Math.round(v * 100_000_000), cur)}
                  series={[{ label: 'Fees', values: total.map((v) => v / 100_000_000) }]}
                />
              ) : null}
              {fees.platforms.length ? (
                <TableWrap>
                  <table aria-label="Fee income per platform">
                    <thead>
                      <tr>
                        <th scope="col">Platform</th>
                        <th scope="col" class="num">
                          Sales
                        </th>
                        <th scope="col" class="num">
                          Marketplace sales
                        </th>
                        <th scope="col" class="num">
                          Fees
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {fees.platforms.map((p) => (
                        <tr key={p.slug}>
                          <td>
                            <a href={`/platforms/${p.slug}`}>{p.name || p.slug}</a>
                          </td>
                          <td class="num">{num(p.sales)}</td>
                          <td class="num">{moneyMicro(p.gross_micro, cur)}</td>
                          <td class="num">{moneyMicro(p.operator_fees_micro, cur)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              ) : (
                <Empty>No platforms yet.</Empty>
              )}
              {months.length ? (
                <TableWrap>
                  <table aria-label="Fee income by month">
                    <thead>
                      <tr>
                        <th scope="col">Month</th>
                        <th scope="col" class="num">
                          Fees
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {months.map((m, i) => (
                        <tr key={m}>
                          <td>{m}</td>
                          <td class="num">{moneyMicro(total[i]!, cur)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              ) : null}
            </>
          );
        }}
      </Async>
    </>
  );
}
