import { describe, expect, test } from 'bun:test';
import { templateBlueprint } from '../tenancy/index.ts';
import { contrastText, platformHomePage } from './pages.ts';

describe('platform pages', () => {
  test('text on brand colors is black or white, whichever reads better', () => {
    expect(contrastText('#ffffff')).toBe('#000000');
    expect(contrastText('#000')).toBe('#ffffff');
    expect(contrastText('#facc15')).toBe('#000000'); // yellow
    expect(contrastText('#1d4ed8')).toBe('#ffffff'); // dark blue
  });

  test('names, logos and CSS from the blueprint cannot break out of their places', () => {
    const bp = templateBlueprint('creator');
    bp.identity.name = '<script>alert(1)</script> & Co';
    bp.identity.branding.logo = 'https://x.test/a.png" onerror="alert(1)';
    bp.identity.branding.custom_css = 'body{color:red}';
    const html = platformHomePage(bp);
    expect(html).toContain('<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</title>');
    expect(html).not.toContain('<script>');
    expect(html).toContain('src="https://x.test/a.png&quot; onerror=&quot;alert(1)"');
    expect(html).toContain('<style>body{color:red}</style>');
  });
});
