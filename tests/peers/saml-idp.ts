/**
 * A SAML 2.0 identity provider for tests, built on samlify: it reads the SP's AuthnRequest
 * (HTTP-Redirect), answers with a signed Response (the message and the assertion both signed),
 * and offers helpers that tamper with a response the way attackers do (stripped signatures,
 * signature wrapping, comments in the NameID, foreign keys). Keys come from `openssl` in a
 * temporary directory that is removed at once; nothing here is ever committed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import * as samlify from 'samlify';

// The test IdP only: the SP under test validates with its own library, never with this.
samlify.setSchemaValidator({ validate: () => Promise.resolve('skipped') });

const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
};

/** A PEM private key and its self-signed PEM certificate. */
export interface TestKeyPair {
  key: string;
  cert: string;
}

/** An RSA key and a self-signed certificate made by `openssl` (valid two days). */
export async function makeKeyPair(cn = 'test-idp'): Promise<TestKeyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'saml-keys-'));
  try {
    const proc = Bun.spawn(
      [
        'openssl',
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdout: 'ignore', stderr: 'pipe' },
    );
    const code = await proc.exited;
    if (code !== 0) throw new Error(`openssl failed: ${await new Response(proc.stderr).text()}`);
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the IdP read from an SP-initiated request. */
export interface ParsedRequest {
  id: string;
  relayState: string | null;
  issuer: string;
  acsUrl: string | null;
  /** The request as samlify parsed it, for `createLoginResponse`. */
  info: { extract: Record<string, unknown> };
}

/** Everything a test may set in a response; unset fields take the correct values. */
export interface ResponseOptions {
  nameId: string;
  /** Attributes by name; each value one string or several. */
  attributes?: Record<string, string | string[]>;
  /** The request being answered; null or absent: an IdP-initiated (unsolicited) response. */
  request?: ParsedRequest | null;
  /** Overrides InResponseTo (on the Response and the SubjectConfirmationData). */
  inResponseTo?: string | null;
  issuer?: string;
  audience?: string;
  recipient?: string;
  destination?: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
  subjectNotOnOrAfter?: Date;
  assertionId?: string;
}

const RESPONSE_TEMPLATE =
  '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">' +
  '<saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>' +
  '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}">' +
  '<saml:Issuer>{Issuer}</saml:Issuer>' +
  '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{NameID}</saml:NameID>' +
  '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{SubjectNotOnOrAfter}" Recipient="{Recipient}" InResponseTo="{InResponseTo}"/></saml:SubjectConfirmation></saml:Subject>' +
  '<saml:Conditions NotBefore="{NotBefore}" NotOnOrAfter="{NotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>' +
  '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{AssertionID}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>' +
  '{AttributeStatement}</saml:Assertion></samlp:Response>';

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function attributeStatement(attrs: Record<string, string | string[]>): string {
  const entries = Object.entries(attrs);
  if (!entries.length) return '';
  const body = entries
    .map(([name, v]) => {
      const values = (Array.isArray(v) ? v : [v])
        .map((x) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(x)}</saml:AttributeValue>`)
        .join('');
      return `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values}</saml:Attribute>`;
    })
    .join('');
  return `<saml:AttributeStatement>${body}</saml:AttributeStatement>`;
}

let counter = 0;
const newSamlId = () =>
  `_t${Date.now().toString(36)}${(++counter).toString(36)}${crypto.randomUUID().replace(/-/g, '')}`;

/**
 * A samlify IdP. `keys` sign; `keyInfoCert` (default: the keys' own certificate) is what the
 * signatures' KeyInfo claims, so a test can sign with one key while naming another's cert.
 */
export class TestIdp {
  readonly idp: samlify.IdentityProviderInstance;

  constructor(
    readonly opts: {
      entityId: string;
      ssoUrl: string;
      keys: TestKeyPair;
      keyInfoCert?: string;
      /** Verify the SP's signature on AuthnRequests (with the cert in its metadata). */
      wantAuthnRequestsSigned?: boolean;
    },
  ) {
    this.idp = samlify.IdentityProvider({
      entityID: opts.entityId,
      privateKey: opts.keys.key,
      signingCert: opts.keyInfoCert ?? opts.keys.cert,
      singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: opts.ssoUrl }],
      singleLogoutService: [
        { Binding: samlify.Constants.namespace.binding.redirect, Location: `${opts.ssoUrl}/logout` },
      ],
      nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
      wantAuthnRequestsSigned: opts.wantAuthnRequestsSigned ?? false,
      requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      generateID: newSamlId,
    });
  }

  /**
   * The SP as samlify sees it, from the SP's published metadata. By default this IdP then signs
   * both the assertion and the whole message; `sign` drops one of them (a weaker IdP).
   */
  serviceProvider(
    spMetadataXml: string,
    sign: { assertion?: boolean; response?: boolean } = {},
  ): samlify.ServiceProviderInstance {
    const metadata =
      sign.assertion === false
        ? spMetadataXml.replace('WantAssertionsSigned="true"', 'WantAssertionsSigned="false"')
        : spMetadataXml;
    return samlify.ServiceProvider({ metadata, wantMessageSigned: sign.response !== false });
  }

  /** Reads an SP's HTTP-Redirect AuthnRequest from the Location it answered with. */
  async parseRedirect(sp: samlify.ServiceProviderInstance, location: string): Promise<ParsedRequest> {
    const url = new URL(location);
    const query = Object.fromEntries(url.searchParams);
    // The signed octet string: the query as sent, without the Signature parameter.
    const octetString = url.search
      .slice(1)
      .split('&')
      .filter((p) => !p.startsWith('Signature='))
      .join('&');
    const r = await this.idp.parseLoginRequest(sp, 'redirect', { query, octetString });
    const req = (
      r.extract as { request: { id: string; issuer?: string; assertionConsumerServiceUrl?: string } }
    ).request;
    const issuer = (r.extract as { issuer?: string }).issuer ?? req.issuer ?? '';
    return {
      id: req.id,
      relayState: url.searchParams.get('RelayState'),
      issuer,
      acsUrl: req.assertionConsumerServiceUrl ?? null,
      info: r as unknown as { extract: Record<string, unknown> },
    };
  }

  /**
   * A base64 SAMLResponse for the SP: the assertion signed, then the whole message signed
   * (samlify's order). Values not overridden are the correct ones for `sp` and `request`.
   */
  async loginResponse(sp: samlify.ServiceProviderInstance, o: ResponseOptions): Promise<string> {
    const now = new Date();
    const later = new Date(now.getTime() + 5 * 60_000);
    // samlify names bindings by their short name here ('post'), not by URN.
    const acsUrl = String(sp.entityMeta.getAssertionConsumerService('post'));
    const inResponseTo = o.inResponseTo !== undefined ? o.inResponseTo : (o.request?.id ?? null);
    const values: Record<string, string | null> = {
      ID: newSamlId(),
      AssertionID: o.assertionId ?? newSamlId(),
      IssueInstant: now.toISOString(),
      Destination: o.destination ?? acsUrl,
      Recipient: o.recipient ?? acsUrl,
      Audience: o.audience ?? sp.entityMeta.getEntityID(),
      Issuer: o.issuer ?? this.opts.entityId,
      NameID: o.nameId,
      NotBefore: (o.notBefore ?? new Date(now.getTime() - 1_000)).toISOString(),
      NotOnOrAfter: (o.notOnOrAfter ?? later).toISOString(),
      SubjectNotOnOrAfter: (o.subjectNotOnOrAfter ?? o.notOnOrAfter ?? later).toISOString(),
      InResponseTo: inResponseTo,
    };
    const template = RESPONSE_TEMPLATE.replace(
      '{AttributeStatement}',
      attributeStatement(o.attributes ?? {}),
    );
    const requestInfo = (o.request?.info ?? { extract: {} }) as Parameters<
      samlify.IdentityProviderInstance['createLoginResponse']
    >[1];
    const r = await this.idp.createLoginResponse(
      sp,
      requestInfo,
      'post',
      { email: o.nameId },
      {
        customTagReplacement: () => ({
          id: values.ID!,
          context: samlify.SamlLib.replaceTagsByValue(template, values),
        }),
      },
    );
    return r.context;
  }
}

/** Helpers that alter a base64 SAMLResponse the way an attacker would. */
export const tamper = {
  decode: (b64: string): string => Buffer.from(b64, 'base64').toString('utf8'),
  encode: (xml: string): string => Buffer.from(xml, 'utf8').toString('base64'),

  /** Every ds:Signature removed: an unsigned response carrying an unsigned assertion. */
  stripSignatures(b64: string, which: 'all' | 'response' | 'assertion' = 'all'): string {
    const doc = parse(tamper.decode(b64));
    const root = doc.documentElement!;
    for (const sig of children(root, NS.ds, 'Signature')) if (which !== 'assertion') root.removeChild(sig);
    for (const a of children(root, NS.saml, 'Assertion'))
      for (const sig of children(a, NS.ds, 'Signature')) if (which !== 'response') a.removeChild(sig);
    return tamper.encode(serialize(doc));
  },

  /**
   * An empty comment put after `prefix` in every text node that reads `text` (the NameID and
   * attribute values): the signatures stay valid, since exclusive c14n drops comments.
   */
  commentInText(b64: string, text: string, prefix: string): string {
    if (!text.startsWith(prefix)) throw new Error('prefix must start the text');
    const xml = tamper.decode(b64);
    const needle = `>${escapeXml(text)}<`;
    if (!xml.includes(needle)) throw new Error(`text ${text} not found`);
    return tamper.encode(
      xml.replaceAll(needle, `>${escapeXml(prefix)}<!---->${escapeXml(text.slice(prefix.length))}<`),
    );
  },

  /**
   * Signature wrapping, "moved": a new evil Response (its own ID) holds an evil unsigned
   * assertion, while the genuine signed Response, signature and all, is moved inside it
   * (in samlp:Extensions) and its signature copied up next to the evil root's Issuer.
   */
  wrapMovedResponse(b64: string, evilNameId: string): string {
    const doc = parse(tamper.decode(b64));
    const genuine = doc.documentElement!;
    const evilDoc = parse(tamper.decode(b64));
    const evil = evilDoc.documentElement!;
    evil.setAttribute('ID', `_evil${crypto.randomUUID().replace(/-/g, '')}`);
    const evilAssertion = children(evil, NS.saml, 'Assertion')[0]!;
    for (const sig of children(evilAssertion, NS.ds, 'Signature')) evilAssertion.removeChild(sig);
    evilAssertion.setAttribute('ID', `_evila${crypto.randomUUID().replace(/-/g, '')}`);
    setNameId(evilAssertion, evilNameId);
    // The genuine response goes into Extensions; the root keeps its copied signature.
    const ext = evilDoc.createElementNS(NS.samlp, 'samlp:Extensions');
    ext.appendChild(evilDoc.importNode(genuine, true));
    const sig = children(evil, NS.ds, 'Signature')[0]!;
    evil.insertBefore(ext, sig.nextSibling);
    return tamper.encode(serialize(evilDoc));
  },

  /**
   * Signature wrapping, "moved assertion": the genuine signed assertion is moved into an
   * Advice element of an evil unsigned assertion that takes its place (the response
   * signature is left as it was).
   */
  wrapMovedAssertion(b64: string, evilNameId: string): string {
    const doc = parse(tamper.decode(b64));
    const root = doc.documentElement!;
    const genuine = children(root, NS.saml, 'Assertion')[0]!;
    const evil = genuine.cloneNode(true) as Element;
    for (const sig of children(evil, NS.ds, 'Signature')) evil.removeChild(sig);
    evil.setAttribute('ID', `_evila${crypto.randomUUID().replace(/-/g, '')}`);
    setNameId(evil, evilNameId);
    const advice = doc.createElementNS(NS.saml, 'saml:Advice');
    root.replaceChild(evil, genuine);
    advice.appendChild(genuine);
    const conditions = children(evil, NS.saml, 'Conditions')[0]!;
    evil.insertBefore(advice, conditions.nextSibling);
    return tamper.encode(serialize(doc));
  },

  /**
   * Signature wrapping, "duplicated assertion": an evil unsigned copy of the assertion (another
   * ID, another NameID) is put first; the genuine signed assertion follows, untouched.
   */
  duplicateAssertion(b64: string, evilNameId: string): string {
    const doc = parse(tamper.decode(b64));
    const root = doc.documentElement!;
    const genuine = children(root, NS.saml, 'Assertion')[0]!;
    const evil = genuine.cloneNode(true) as Element;
    for (const sig of children(evil, NS.ds, 'Signature')) evil.removeChild(sig);
    evil.setAttribute('ID', `_evila${crypto.randomUUID().replace(/-/g, '')}`);
    setNameId(evil, evilNameId);
    root.insertBefore(evil, genuine);
    return tamper.encode(serialize(doc));
  },

  /** The NameID of the (first) assertion, as the raw XML carries it. */
  nameIdOf(b64: string): string {
    const doc = parse(tamper.decode(b64));
    const n = doc.getElementsByTagNameNS(NS.saml, 'NameID')[0];
    return n?.textContent ?? '';
  },
};

function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml') as unknown as Document;
}
function serialize(doc: Document): string {
  return new XMLSerializer().serializeToString(doc as unknown as Node);
}
function children(el: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local)
      out.push(n as Element);
  }
  return out;
}
function setNameId(assertion: Element, value: string): void {
  const subject = children(assertion, NS.saml, 'Subject')[0]!;
  const nameId = children(subject, NS.saml, 'NameID')[0]!;
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(assertion.ownerDocument!.createTextNode(value));
}
