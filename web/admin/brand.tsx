import { type Signal, useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { onColor } from '../shared/color.ts';
import { Async, Field, Form, Notice, Submit, Title, useForm, useResource } from '../shared/ui.tsx';

/** The branding editor (live preview, logo upload) and the feature switches. */

interface Branding {
  logo?: string;
  colors: { primary: string; secondary: string; background: string; text: string };
  fonts: { heading: string; body: string };
  color_scheme?: 'system' | 'light' | 'dark';
  custom_css: string;
}

export interface PlatformAnswer {
  platform: { id: string; slug: string; name: string };
  blueprint: { identity: { name: string; branding: Branding }; features: Record<string, boolean> };
  rules: { settings: { path: string; who: string }[] };
}

export const loadPlatform = () => api<PlatformAnswer>('GET', '/api/v1/platform');

export function Branding() {
  const r = useResource(loadPlatform);
  return (
    <>
      <Title>Branding</Title>
      <p class="muted">How your pages look to your users. Changes show on their next page load.</p>
      <Async r={r}>
        {(d) => <BrandForm b={d.blueprint.identity.branding} name={d.blueprint.identity.name} />}
      </Async>
    </>
  );
}

function BrandForm({ b, name }: { b: Branding; name: string }) {
  const primary = useSignal(b.colors.primary);
  const secondary = useSignal(b.colors.secondary);
  const background = useSignal(b.colors.background);
  const text = useSignal(b.colors.text);
  const heading = useSignal(b.fonts.heading);
  const body = useSignal(b.fonts.body);
  const logo = useSignal(b.logo ?? '');
  const scheme = useSignal(b.color_scheme ?? 'system');
  const css = useSignal(b.custom_css);
  const saved = useSignal(false);
  const upload = useSignal<string | null>(null);
  const form = useForm();
  return (
    <Form
      state={form}
      label="Branding"
      onSubmit={async () => {
        saved.value = false;
        const branding: Record<string, unknown> = {
          colors: {
            primary: primary.value,
            secondary: secondary.value,
            background: background.value,
            text: text.value,
          },
          fonts: { heading: heading.value, body: body.value },
          color_scheme: scheme.value,
          custom_css: css.value,
        };
        if (logo.value.trim()) branding.logo = logo.value.trim();
        await api('PATCH', '/api/v1/platform', { blueprint: { identity: { branding } } });
        saved.value = true;
      }}
    >
      <div class="row">
        <div>
          <fieldset>
            <legend>Colors</legend>
            <Field
              label="Primary color"
              name="blueprint/identity/branding/colors/primary"
              type="color"
              value={primary}
              form={form}
            />
            <Field
              label="Secondary color"
              name="blueprint/identity/branding/colors/secondary"
              type="color"
              value={secondary}
              form={form}
            />
            <Field
              label="Background color"
              name="blueprint/identity/branding/colors/background"
              type="color"
              value={background}
              form={form}
            />
            <Field
              label="Text color"
              name="blueprint/identity/branding/colors/text"
              type="color"
              value={text}
              form={form}
            />
            <div class="field">
              <label for="scheme">Light or dark</label>
              <select
                id="scheme"
                value={scheme.value}
                onChange={(e) => {
                  scheme.value = (e.currentTarget as HTMLSelectElement).value as typeof scheme.value;
                }}
              >
                <option value="system">Follow the viewer's system</option>
                <option value="light">Always light</option>
                <option value="dark">Always dark</option>
              </select>
            </div>
          </fieldset>
          <fieldset>
            <legend>Fonts</legend>
            <Field
              label="Heading font"
              name="blueprint/identity/branding/fonts/heading"
              value={heading}
              form={form}
            />
            <Field label="Body font" name="blueprint/identity/branding/fonts/body" value={body} form={form} />
          </fieldset>
        </div>
        <BrandPreview
          name={name}
          logo={logo}
          colors={{ primary, secondary, background, text }}
          fonts={{ heading, body }}
        />
      </div>
      <fieldset>
        <legend>Logo</legend>
        <Field
          label="Logo address"
          name="blueprint/identity/branding/logo"
          value={logo}
          form={form}
          hint="an https: URL, or upload an image below"
        />
        <div class="field">
          <label for="logo-file">Upload a logo (PNG, JPEG, WebP or GIF, at most 256 KB)</label>
          <input
            id="logo-file"
            type="file"
            accept="image/png,image/jpeg,image/webp,image/gif"
            onChange={async (e) => {
              const f = (e.currentTarget as HTMLInputElement).files?.[0];
              upload.value = null;
              if (!f) return;
              if (f.size > 256 * 1024) {
                upload.value = `The logo is ${Math.ceil(f.size / 1024)} KB: at most 256 KB.`;
                return;
              }
              // Stored in the platform at once; the server checks the bytes are an image.
              try {
                const r = await api<{ logo: string }>('POST', '/api/v1/platform/logo', undefined, {
                  raw: f,
                  headers: { 'content-type': f.type || 'application/octet-stream' },
                });
                logo.value = r.logo;
                upload.value = 'Logo uploaded and saved.';
              } catch (err) {
                upload.value = (err as Error).message;
              }
            }}
          />
          {upload.value ? (
            <div class="hint" role="status">
              {upload.value}
            </div>
          ) : null}
        </div>
      </fieldset>
      <div class="field">
        <label for="custom-css">Custom CSS</label>
        <textarea
          id="custom-css"
          name="custom_css"
          value={css.value}
          spellcheck={false}
          onInput={(e) => {
            css.value = (e.currentTarget as HTMLTextAreaElement).value;
          }}
        />
        <div class="hint">Appended to your pages' stylesheet. It cannot load resources from other sites.</div>
      </div>
      <div class="actions">
        <Submit state={form}>Save branding</Submit>
      </div>
      {saved.value ? <Notice>Branding saved</Notice> : null}
    </Form>
  );
}

/** A font name as the pages use it: the brand's font, then the system's. */
const stack = (f: string) =>
  f.trim() ? `"${f.replace(/["\\;{}<>]/g, '').trim()}", system-ui, sans-serif` : 'system-ui, sans-serif';

function BrandPreview({
  name,
  logo,
  colors,
  fonts,
}: {
  name: string;
  logo: Signal<string>;
  colors: Record<'primary' | 'secondary' | 'background' | 'text', Signal<string>>;
  fonts: Record<'heading' | 'body', Signal<string>>;
}) {
  return (
    <section
      class="preview"
      aria-label="Preview"
      style={{
        '--p': colors.primary.value,
        '--on-p': onColor(colors.primary.value),
        background: colors.background.value,
        color: colors.text.value,
        fontFamily: stack(fonts.body.value),
      }}
    >
      <div class="preview-bar" style={{ fontFamily: stack(fonts.heading.value) }}>
        {logo.value ? <img src={logo.value} alt="" height={24} /> : null} {name}
      </div>
      <div class="preview-body">
        <p>Welcome back. This is how your users see your pages.</p>
        <span class="preview-button">New chat</span>{' '}
        <span
          class="preview-button"
          style={{ background: colors.secondary.value, color: onColor(colors.secondary.value) }}
        >
          Accent
        </span>
      </div>
    </section>
  );
}

const FEATURES: [string, string][] = [
  ['agent_creation', 'Users can create their own agents'],
  ['agent_marketplace', 'Users can publish, find and buy agents'],
  ['viral_sharing', 'Users can share agents and chats through public links'],
  ['collaborative_agents', 'Several users can work with the same agent'],
  ['analytics_dashboard', 'Usage analytics for admins and creators'],
  ['revenue_reporting', 'Revenue reports for admins and creators'],
  ['user_management', 'Admins manage users, roles and teams'],
  ['api_access', 'Users can call the platform with an API key'],
  ['sso_integration', "Sign-in through your organisation's identity provider"],
  ['compliance_reporting', 'Compliance reports'],
  ['custom_integrations', 'Webhooks and custom integrations'],
  ['white_label_mobile', 'A white-labeled mobile app'],
  ['white_label', 'No "Powered by Soulfra" anywhere'],
  ['progress_tracking', 'Learning progress tracking'],
];

export function Features() {
  const r = useResource(loadPlatform);
  return (
    <>
      <Title>Features</Title>
      <Async r={r}>{(d) => <FeatureForm features={d.blueprint.features} />}</Async>
    </>
  );
}

function FeatureForm({ features }: { features: Record<string, boolean> }) {
  const on = useSignal({ ...features });
  const saved = useSignal(false);
  const form = useForm();
  return (
    <Form
      state={form}
      label="Features"
      onSubmit={async () => {
        saved.value = false;
        const changed = Object.fromEntries(Object.entries(on.value).filter(([k, v]) => features[k] !== v));
        await api('PATCH', '/api/v1/platform', { blueprint: { features: changed } });
        Object.assign(features, changed);
        saved.value = true;
      }}
    >
      <fieldset>
        <legend>Turned on for this platform</legend>
        {FEATURES.map(([k, label]) => (
          <label class="check" key={k}>
            <input
              type="checkbox"
              name={k}
              checked={!!on.value[k]}
              onChange={(e) => {
                on.value = { ...on.value, [k]: (e.currentTarget as HTMLInputElement).checked };
              }}
            />
            {label} <code class="muted">{k}</code>
          </label>
        ))}
      </fieldset>
      <p class="muted">
        Some switches are the operator's to change; saving one of those explains why it was refused.
      </p>
      <div class="actions">
        <Submit state={form}>Save features</Submit>
      </div>
      {saved.value ? <Notice>Features saved</Notice> : null}
    </Form>
  );
}
