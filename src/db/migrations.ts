import control1 from '../../migrations/control/0001-init.sql' with { type: 'text' };
import control2 from '../../migrations/control/0002-operators.sql' with { type: 'text' };
import control3 from '../../migrations/control/0003-domains.sql' with { type: 'text' };
import control4 from '../../migrations/control/0004-operator-sso.sql' with { type: 'text' };
import control5 from '../../migrations/control/0005-security.sql' with { type: 'text' };
import control6 from '../../migrations/control/0006-events.sql' with { type: 'text' };
import control7 from '../../migrations/control/0007-platform-deletions.sql' with { type: 'text' };
import control8 from '../../migrations/control/0008-operator-password.sql' with { type: 'text' };
import control9 from '../../migrations/control/0009-federation.sql' with { type: 'text' };
import control10 from '../../migrations/control/0010-stripe-objects.sql' with { type: 'text' };
import control11 from '../../migrations/control/0011-operator-plans.sql' with { type: 'text' };
import tenant1 from '../../migrations/tenant/0001-init.sql' with { type: 'text' };
import tenant2 from '../../migrations/tenant/0002-users.sql' with { type: 'text' };
import tenant3 from '../../migrations/tenant/0003-identity.sql' with { type: 'text' };
import tenant4 from '../../migrations/tenant/0004-ai.sql' with { type: 'text' };
import tenant5 from '../../migrations/tenant/0005-security.sql' with { type: 'text' };
import tenant6 from '../../migrations/tenant/0006-events.sql' with { type: 'text' };
import tenant7 from '../../migrations/tenant/0007-mail.sql' with { type: 'text' };
import tenant8 from '../../migrations/tenant/0008-onboarding.sql' with { type: 'text' };
import tenant9 from '../../migrations/tenant/0009-usage-micro.sql' with { type: 'text' };
import tenant10 from '../../migrations/tenant/0010-conversations.sql' with { type: 'text' };
import tenant11 from '../../migrations/tenant/0011-brand-assets.sql' with { type: 'text' };
import tenant12 from '../../migrations/tenant/0012-agents.sql' with { type: 'text' };
import tenant13 from '../../migrations/tenant/0013-knowledge.sql' with { type: 'text' };
import tenant14 from '../../migrations/tenant/0014-marketplace.sql' with { type: 'text' };
import tenant15 from '../../migrations/tenant/0015-agent-forks.sql' with { type: 'text' };
import tenant16 from '../../migrations/tenant/0016-agent-tools.sql' with { type: 'text' };
import tenant17 from '../../migrations/tenant/0017-collaboration.sql' with { type: 'text' };
import tenant18 from '../../migrations/tenant/0018-federation.sql' with { type: 'text' };
import tenant19 from '../../migrations/tenant/0019-sharing.sql' with { type: 'text' };
import tenant20 from '../../migrations/tenant/0020-message-tool-steps.sql' with { type: 'text' };
import tenant21 from '../../migrations/tenant/0021-marketplace-community.sql' with { type: 'text' };
import tenant22 from '../../migrations/tenant/0022-ledger.sql' with { type: 'text' };
import tenant23 from '../../migrations/tenant/0023-purchases.sql' with { type: 'text' };
import tenant24 from '../../migrations/tenant/0024-subscriptions.sql' with { type: 'text' };
import tenant25 from '../../migrations/tenant/0025-invoices.sql' with { type: 'text' };
import tenant26 from '../../migrations/tenant/0026-payouts.sql' with { type: 'text' };
import tenant27 from '../../migrations/tenant/0027-credit-settings.sql' with { type: 'text' };
import type { Migration } from './migrate.ts';

// Imported statically so that `bun build --compile` embeds them in the executable.

/** The control plane's schema steps (data/control.db). */
export const CONTROL_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'init', sql: control1 },
  { version: 2, name: 'operators', sql: control2 },
  { version: 3, name: 'domains', sql: control3 },
  { version: 4, name: 'operator-sso', sql: control4 },
  { version: 5, name: 'security', sql: control5 },
  { version: 6, name: 'events', sql: control6 },
  { version: 7, name: 'platform-deletions', sql: control7 },
  { version: 8, name: 'operator-password', sql: control8 },
  { version: 9, name: 'federation', sql: control9 },
  { version: 10, name: 'stripe-objects', sql: control10 },
  { version: 11, name: 'operator-plans', sql: control11 },
];

/** Each platform's schema steps (data/platforms/<id>.db). */
export const TENANT_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'init', sql: tenant1 },
  { version: 2, name: 'users', sql: tenant2 },
  { version: 3, name: 'identity', sql: tenant3 },
  { version: 4, name: 'ai', sql: tenant4 },
  { version: 5, name: 'security', sql: tenant5 },
  { version: 6, name: 'events', sql: tenant6 },
  { version: 7, name: 'mail', sql: tenant7 },
  { version: 8, name: 'onboarding', sql: tenant8 },
  { version: 9, name: 'usage-micro', sql: tenant9 },
  { version: 10, name: 'conversations', sql: tenant10 },
  { version: 11, name: 'brand-assets', sql: tenant11 },
  { version: 12, name: 'agents', sql: tenant12 },
  { version: 13, name: 'knowledge', sql: tenant13 },
  { version: 14, name: 'marketplace', sql: tenant14 },
  { version: 15, name: 'agent-forks', sql: tenant15 },
  { version: 16, name: 'agent-tools', sql: tenant16 },
  { version: 17, name: 'collaboration', sql: tenant17 },
  { version: 18, name: 'federation', sql: tenant18 },
  { version: 19, name: 'sharing', sql: tenant19 },
  { version: 20, name: 'message-tool-steps', sql: tenant20 },
  { version: 21, name: 'marketplace-community', sql: tenant21 },
  { version: 22, name: 'ledger', sql: tenant22 },
  { version: 23, name: 'purchases', sql: tenant23 },
  { version: 24, name: 'subscriptions', sql: tenant24 },
  { version: 25, name: 'invoices', sql: tenant25 },
  { version: 26, name: 'payouts', sql: tenant26 },
  { version: 27, name: 'credit-settings', sql: tenant27 },
];
