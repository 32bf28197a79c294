import { signal } from '@preact/signals';

/**
 * A small client router on the History API: the current path as a signal, links that
 * navigate without a reload, and patterns with `:params`. Each app lists its own screens.
 */
export const path = signal(typeof location === 'undefined' ? '/' : location.pathname);
export const query = signal(typeof location === 'undefined' ? '' : location.search);

export function navigate(to: string, replace = false): void {
  const url = new URL(to, location.href);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  path.value = url.pathname;
  query.value = url.search;
  // A new screen starts at its top, and focus moves to it for keyboard and screen-reader users.
  window.scrollTo(0, 0);
  queueMicrotask(() => document.querySelector<HTMLElement>('main h1, main [data-autofocus]')?.focus());
}

if (typeof window !== 'undefined') {
  window.addEventListener('popstate', () => {
    path.value = location.pathname;
    query.value = location.search;
  });
  // Same-origin links navigate in place; modified clicks and new tabs keep the browser's way.
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download') || a.dataset.reload !== undefined) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !a.getAttribute('href')?.startsWith('/')) return;
    if (!routedPrefixes.some((p) => url.pathname === p || url.pathname.startsWith(`${p}/`) || p === '/'))
      return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
}

/** The path prefixes the current app owns (links elsewhere load a page). */
const routedPrefixes: string[] = [];
export function ownPrefix(prefix: string): void {
  routedPrefixes.push(prefix);
}

/** Matches `pattern` (`/platforms/:slug`) against `p`; the params, or null. */
export function match(pattern: string, p: string): Record<string, string> | null {
  const a = pattern.split('/').filter(Boolean);
  const b = p.split('/').filter(Boolean);
  if (a.length !== b.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.startsWith(':')) out[x.slice(1)] = decodeURIComponent(y);
    else if (x !== y) return null;
  }
  return out;
}

/** The first route whose pattern matches the current path, with its params. */
export function pick<T>(
  routes: [string, T][],
  p: string,
): { route: T; params: Record<string, string> } | null {
  for (const [pattern, route] of routes) {
    const params = match(pattern, p);
    if (params) return { route, params };
  }
  return null;
}

/** A query parameter of the current URL. */
export function param(name: string): string | null {
  return new URLSearchParams(query.value).get(name);
}
