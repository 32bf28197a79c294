// The dependency rules of ../shared/ARCHITECTURE.md ("Dependency direction"), enforced by
// `npm run depcheck` (part of `npm test`). A rule here is a rule there: change both together.
const DOMAINS = 'tenancy|identity|ai|billing|agents|audit|webhooks|analytics|replication';
const SUBSCRIBERS = 'audit|webhooks|analytics';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Cycles make the order of start-up and the direction of knowledge unclear.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'shared-imports-nothing-internal',
      severity: 'error',
      comment: 'src/shared holds pure helpers: errors, ids, crypto, money, time.',
      from: { path: '^src/shared/' },
      to: { path: '^src/', pathNot: '^src/shared/' },
    },
    {
      name: 'db-imports-only-shared',
      severity: 'error',
      from: { path: '^src/db/' },
      to: { path: '^src/', pathNot: '^src/(shared|db)/' },
    },
    {
      name: 'app-imports-only-shared-and-db',
      severity: 'error',
      from: { path: '^src/app/' },
      to: { path: '^src/', pathNot: '^src/(shared|db|app)/' },
    },
    {
      name: 'domains-import-other-domains-only-through-index',
      severity: 'error',
      comment: "A domain's public API is its index.ts.",
      from: { path: `^src/(${DOMAINS})/` },
      to: { path: `^src/(${DOMAINS})/(?!index\\.ts$)`, pathNot: '^src/$1/' },
    },
    {
      name: 'domains-do-not-import-flows-server-cli',
      severity: 'error',
      from: { path: `^src/(${DOMAINS})/` },
      to: { path: '^src/(flows|server|cli)/' },
    },
    {
      name: 'tenancy-is-the-bottom-domain',
      severity: 'error',
      comment: 'Order: tenancy → identity → {ai, billing} → agents; nothing imports upward.',
      from: { path: '^src/tenancy/' },
      to: { path: '^src/(identity|ai|billing|agents)/' },
    },
    {
      name: 'identity-does-not-import-upward',
      severity: 'error',
      from: { path: '^src/identity/' },
      to: { path: '^src/(ai|billing|agents)/' },
    },
    {
      name: 'ai-and-billing-do-not-import-agents',
      severity: 'error',
      from: { path: '^src/(ai|billing)/' },
      to: { path: '^src/agents/' },
    },
    {
      name: 'domains-do-not-import-subscribers',
      severity: 'error',
      comment: 'audit, webhooks and analytics subscribe to events; domains call the audit port in app/.',
      from: { path: `^src/(${DOMAINS})/`, pathNot: `^src/(${SUBSCRIBERS})/` },
      to: { path: `^src/(${SUBSCRIBERS})/` },
    },
    {
      name: 'only-routes-server-cli-import-elysia-or-ink',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(server|cli)/', '\\.routes\\.tsx?$'] },
      to: { path: 'node_modules/(elysia|ink)/' },
    },
    {
      name: 'nothing-imports-server-or-cli-but-main',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/main\\.ts$', '^src/(server|cli)/'] },
      to: { path: '^src/(server|cli)/' },
    },
    {
      name: 'server-does-not-import-cli',
      severity: 'error',
      from: { path: '^src/server/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-does-not-import-server-except-serve',
      severity: 'error',
      comment: 'The CLI reaches a running server through its control socket; only `serve` starts one.',
      from: { path: '^src/cli/', pathNot: '^src/cli/serve\\.ts$' },
      to: { path: '^src/server/' },
    },
    {
      name: 'only-server-and-cli-import-flows',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(server|cli|flows)/'] },
      to: { path: '^src/flows/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['\\.test\\.ts$', '^tests/', '^bench/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    moduleSystems: ['es6', 'cjs'],
  },
};
