import { type Signal, signal, useSignal } from '@preact/signals';
import type { ComponentChildren, InputHTMLAttributes } from 'preact';
import { useEffect, useId, useLayoutEffect, useRef } from 'preact/hooks';
import { ApiError } from './api.ts';
import { path } from './router.ts';

/**
 * The shared components: page states (loading, empty, error), forms that show the API's
 * message and the field at fault, tables, confirmations and one-time secrets.
 */

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** An error as the API gave it: its message, and its code for whoever reports it. */
export function ErrorNotice({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  return (
    <div class="notice error" role="alert">
      <div>{message}</div>
      {e?.details.length ? (
        <ul>
          {e.details.map((d) => (
            <li key={d.path}>
              <code>{d.path || '(body)'}</code> {d.reason}
            </li>
          ))}
        </ul>
      ) : null}
      {e ? <div class="code">{e.code}</div> : null}
      {retry ? (
        <div class="actions">
          <button type="button" onClick={retry}>
            Try again
          </button>
        </div>
      ) : null}
    </div>
  );
}

export function Notice({
  kind = 'ok',
  children,
}: {
  kind?: 'ok' | 'warn' | 'error';
  children: ComponentChildren;
}) {
  return (
    <div class={`notice ${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

/** The state of a load: data, or loading, or an error, with a reload. */
export interface Resource<T> {
  data: Signal<T | undefined>;
  error: Signal<unknown>;
  loading: Signal<boolean>;
  reload: () => Promise<void>;
}

/** Loads `fn()` when `deps` change; components read `.data`, `.loading`, `.error`. */
export function useResource<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[] = []): Resource<T> {
  const data = useSignal<T | undefined>(undefined);
  const error = useSignal<unknown>(null);
  const loading = useSignal(true);
  const ctl = useRef<AbortController | null>(null);
  const reload = async () => {
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    loading.value = true;
    error.value = null;
    try {
      const v = await fn(c.signal);
      if (!c.signal.aborted) data.value = v;
    } catch (e) {
      if (!c.signal.aborted) error.value = e;
    } finally {
      if (!c.signal.aborted) loading.value = false;
    }
  };
  // The caller names the dependencies. A layout effect: the request starts as soon as the
  // screen is rendered, not after the browser's next paint (Preact runs effects after it).
  useLayoutEffect(() => {
    void reload();
    return () => ctl.current?.abort();
  }, deps);
  return { data, error, loading, reload };
}

/** Renders a resource's loading and error states, then `children(data)`. */
export function Async<T>({
  r,
  children,
  empty,
}: {
  r: Resource<T>;
  children: (data: T) => ComponentChildren;
  /** When it says the data is empty, this is shown instead. */
  empty?: (data: T) => ComponentChildren | null;
}) {
  if (r.error.value) return <ErrorNotice error={r.error.value} retry={() => void r.reload()} />;
  if (r.data.value === undefined) return <Loading />;
  const e = empty?.(r.data.value);
  return <>{e ?? children(r.data.value)}</>;
}

/** A form whose submit runs `onSubmit`; its error is shown above the buttons and on the fields. */
export interface FormState {
  busy: Signal<boolean>;
  error: Signal<unknown>;
}

export function useForm(): FormState {
  return { busy: useSignal(false), error: useSignal(null) };
}

export function Form({
  state,
  onSubmit,
  children,
  label,
}: {
  state: FormState;
  onSubmit: () => Promise<void> | void;
  children: ComponentChildren;
  label?: string;
}) {
  const submit = async (e: Event) => {
    e.preventDefault();
    if (state.busy.value) return;
    state.busy.value = true;
    state.error.value = null;
    try {
      await onSubmit();
    } catch (err) {
      state.error.value = err;
    } finally {
      state.busy.value = false;
    }
  };
  return (
    <form onSubmit={submit} aria-label={label} noValidate>
      {children}
      <ErrorNotice error={state.error.value} />
    </form>
  );
}

/** The error the last submit of `state` gave for one field. */
export function fieldError(state: FormState | undefined, name: string): string | undefined {
  const e = state?.error.value;
  return e instanceof ApiError ? e.field(name) : undefined;
}

interface InputProps {
  placeholder?: string;
  autocomplete?: string;
  required?: boolean;
  minLength?: number;
  maxLength?: number;
  autoFocus?: boolean;
  disabled?: boolean;
  readOnly?: boolean;
  inputMode?: 'text' | 'numeric' | 'email' | 'url' | 'tel' | 'search' | 'decimal' | 'none';
  pattern?: string;
  min?: string | number;
  max?: string | number;
  step?: string | number;
}

/** A labelled input bound to a signal, showing the server's reason when that field was at fault. */
export function Field({
  label,
  value,
  name,
  form,
  hint,
  type = 'text',
  ...rest
}: {
  label: string;
  value: Signal<string>;
  /** The field's name in the API (for its error), e.g. `email` or `blueprint/identity/name`. */
  name: string;
  form?: FormState;
  hint?: ComponentChildren;
  type?:
    | 'text'
    | 'email'
    | 'password'
    | 'url'
    | 'number'
    | 'search'
    | 'tel'
    | 'color'
    | 'date'
    | 'datetime-local';
} & InputProps) {
  const id = useId();
  const err = fieldError(form, name);
  return (
    <div class="field">
      <label for={id}>
        {label} {hint ? <span class="hint">{hint}</span> : null}
      </label>
      <input
        {...({
          id,
          name,
          type,
          value: value.value,
          onInput: (e: Event) => {
            value.value = (e.currentTarget as HTMLInputElement).value;
          },
          'aria-invalid': err ? 'true' : undefined,
          'aria-describedby': err ? `${id}-err` : undefined,
          ...rest,
          // Preact types <input> as a union keyed on `type`; these props are valid for each.
        } as unknown as InputHTMLAttributes<HTMLInputElement>)}
      />
      {err ? (
        <div class="error" id={`${id}-err`}>
          {label} {err}
        </div>
      ) : null}
    </div>
  );
}

export function Submit({
  state,
  children,
  class: cls = 'primary',
}: {
  state: FormState;
  children: ComponentChildren;
  class?: string;
}) {
  return (
    <button
      type="submit"
      class={cls}
      disabled={state.busy.value}
      aria-busy={state.busy.value ? 'true' : undefined}
    >
      {state.busy.value ? <span class="spinner" aria-hidden="true" /> : null}
      {children}
    </button>
  );
}

/** A button that runs an async action, with its own busy state and error. */
export function ActionButton({
  onClick,
  children,
  class: cls,
  confirm: question,
  label,
}: {
  onClick: () => Promise<unknown> | unknown;
  children: ComponentChildren;
  class?: string;
  confirm?: string;
  label?: string;
}) {
  const busy = useSignal(false);
  const error = useSignal<unknown>(null);
  const run = async () => {
    if (question && !(await confirmDialog(question))) return;
    busy.value = true;
    error.value = null;
    try {
      await onClick();
    } catch (e) {
      error.value = e;
    } finally {
      busy.value = false;
    }
  };
  return (
    <>
      <button type="button" class={cls} disabled={busy.value} onClick={run} aria-label={label}>
        {busy.value ? <span class="spinner" aria-hidden="true" /> : null}
        {children}
      </button>
      {error.value ? <ErrorNotice error={error.value} /> : null}
    </>
  );
}

/** The open confirmation, if any (rendered once by `<Dialogs />`). */
const pending = signal<{ question: string; resolve: (ok: boolean) => void } | null>(null);

export function confirmDialog(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    pending.value = { question, resolve };
  });
}

export function Dialogs() {
  const ref = useRef<HTMLDialogElement>(null);
  const p = pending.value;
  useEffect(() => {
    if (p && ref.current && !ref.current.open) ref.current.showModal();
  }, [p]);
  if (!p) return null;
  const done = (ok: boolean) => {
    ref.current?.close();
    pending.value = null;
    p.resolve(ok);
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-q" onCancel={() => done(false)}>
      <p id="confirm-q">{p.question}</p>
      <div class="actions">
        <button type="button" class="primary" onClick={() => done(true)}>
          Confirm
        </button>
        <button type="button" onClick={() => done(false)}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}

/** A secret shown once (a new key, a password), with a copy button. */
export function OneTimeSecret({ label, value }: { label: string; value: string }) {
  const copied = useSignal(false);
  return (
    <div class="field">
      <div>
        <strong>{label}</strong> <span class="hint">shown once: copy it now</span>
      </div>
      <div class="secret" data-secret={label}>
        {value}
      </div>
      <div class="actions">
        <button
          type="button"
          onClick={async () => {
            await navigator.clipboard?.writeText(value).catch(() => undefined);
            copied.value = true;
          }}
        >
          {copied.value ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}

/** A nav link that marks itself as the current page. */
export function NavLink({
  href,
  children,
  exact = false,
}: {
  href: string;
  children: ComponentChildren;
  exact?: boolean;
}) {
  const p = path.value;
  const current = exact ? p === href : p === href || p.startsWith(`${href}/`);
  return (
    <a href={href} aria-current={current ? 'page' : undefined}>
      {children}
    </a>
  );
}

/** A page heading that takes focus when its screen opens (tabindex -1). */
export function Title({ children }: { children: ComponentChildren }) {
  return <h1 tabIndex={-1}>{children}</h1>;
}

export function StatusBadge({ status }: { status: string }) {
  const kind = ['active', 'ok', 'closed', 'healthy', 'sent', 'complete', 'added', 'published'].includes(
    status,
  )
    ? 'ok'
    : [
          'suspended',
          'half_open',
          'queued',
          'pending',
          'degraded',
          'stopped',
          'draft',
          'waiting',
          'reading',
          'embedding',
        ].includes(status)
      ? 'warn'
      : ['archived', 'open', 'failed', 'down', 'error', 'disabled', 'bounced', 'refused', 'revoked'].includes(
            status,
          )
        ? 'bad'
        : '';
  return <span class={`badge ${kind}`}>{status}</span>;
}

/** Reads the boot data the server put in the page (`<script type="application/json" id="boot">`). */
export function bootData<T>(): T {
  const el = document.getElementById('boot');
  return JSON.parse(el?.textContent || '{}') as T;
}

/**
 * A table's box: it scrolls sideways on narrow screens, and while it does, it takes keyboard
 * focus so the arrow keys can scroll it (a box that fits takes none).
 */
export function TableWrap({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const check = () => {
      if (el.scrollWidth > el.clientWidth + 1) el.setAttribute('tabindex', '0');
      else el.removeAttribute('tabindex');
    };
    check();
    const ro = new ResizeObserver(check);
    ro.observe(el);
    return () => ro.disconnect();
  });
  return (
    <div class="table-wrap" ref={ref}>
      {children}
    </div>
  );
}

/** Figures as cards: a label over a big value each. */
export function StatCards({ items }: { items: readonly (readonly [string, ComponentChildren])[] }) {
  return (
    <div class="cards">
      {items.map(([label, value]) => (
        <div class="card" key={label}>
          <div class="label">{label}</div>
          <div class="big">{value}</div>
        </div>
      ))}
    </div>
  );
}
