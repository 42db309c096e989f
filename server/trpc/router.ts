import { router } from './init.js';
import { authRouter } from '../modules/auth/router.js';
import { organizationRouter } from '../modules/organizations/router.js';
import { projectRouter } from '../modules/projects/router.js';
import { teamRouter } from '../modules/team/router.js';
import { auditRouter } from '../modules/audit/router.js';
import { liveRouter, presenceRouter } from '../modules/live/router.js';
import { billingRouter } from '../modules/billing/router.js';
import { apiKeyRouter } from '../modules/apiKeys/router.js';
import { providerKeyRouter } from '../modules/providerKeys/router.js';
import { analyticsRouter, logsRouter } from '../modules/analytics/router.js';
import { webhookRouter } from '../modules/webhooks/router.js';
import { providerHealthRouter } from '../modules/providerHealth/router.js';

export const appRouter = router({
  auth: authRouter,
  organization: organizationRouter,
  project: projectRouter,
  team: teamRouter,
  audit: auditRouter,
  live: liveRouter,
  presence: presenceRouter,
  billing: billingRouter,
  apiKey: apiKeyRouter,
  providerKey: providerKeyRouter,
  analytics: analyticsRouter,
  logs: logsRouter,
  webhook: webhookRouter,
  providerHealth: providerHealthRouter,
});

export type AppRouter = typeof appRouter;
