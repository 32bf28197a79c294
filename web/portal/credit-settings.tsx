import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { Async, Field, Form, Notice, Submit, useForm, useResource } from '../shared/ui.tsx';

interface Settings {
  settings: { currency: string; low_balance_minor: number; low_balance_default: boolean };
}

/**
 * The low-balance notice's threshold on /app/billing (issue 13 item 2): a mail each time the
 * credits fall below it. Empty: the platform's default.
 */
export function CreditSettingsSection() {
  const tick = useSignal(0);
  const saved = useSignal(false);
  const value = useSignal('');
  // The field starts from what is stored, at each load (then it is the user's).
  const r = useResource(async () => {
    const d = await api<Settings>('GET', '/api/v1/billing/credits/settings');
    value.value = d.settings.low_balance_default ? '' : (d.settings.low_balance_minor / 100).toFixed(2);
    return d;
  }, [tick.value]);
  const form = useForm();
  return (
    <section aria-labelledby="credit-settings-h">
      <h2 id="credit-settings-h">Low-balance notice</h2>
      <Async r={r}>
        {(d) => {
          if (value.value === null)
            value.value = d.settings.low_balance_default
              ? ''
              : (d.settings.low_balance_minor / 100).toFixed(2);
          return (
            <>
              <p class="muted">
                We mail you when your credits fall below this amount
                {d.settings.low_balance_default
                  ? ` (now the platform's default, ${(d.settings.low_balance_minor / 100).toFixed(2)})`
                  : ''}
                .
              </p>
              {saved.value ? <Notice>Saved.</Notice> : null}
              <Form
                state={form}
                label="Low-balance notice"
                onSubmit={async () => {
                  saved.value = false;
                  const text = value.value.trim();
                  const cents = text === '' ? null : Math.round(Number(text) * 100);
                  try {
                    await api('PUT', '/api/v1/billing/credits/settings', {
                      low_balance_minor:
                        cents !== null && Number.isFinite(cents) ? cents : text === '' ? null : -1,
                    });
                  } catch (e) {
                    if (e instanceof ApiError && e.field('low_balance_minor'))
                      throw new ApiError(e.status, e.code, e.message, [
                        { path: '/threshold', reason: e.field('low_balance_minor')! },
                      ]);
                    throw e;
                  }
                  saved.value = true;
                  tick.value++;
                }}
              >
                <Field
                  label="Notify me below"
                  name="threshold"
                  value={value}
                  form={form}
                  inputMode="decimal"
                  hint="such as 5.00; empty for the platform's default"
                />
                <Submit state={form}>Save</Submit>
              </Form>
            </>
          );
        }}
      </Async>
    </section>
  );
}
