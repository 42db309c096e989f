/**
 * The composition root: `createServices(config, opts)` builds every long-lived service, observer,
 * cache and pool of a process and passes them explicitly. The server (server/app.ts), the admin CLI
 * (server/admin.ts), the job runner (server/jobs/boss.ts), the benchmarks and the tests all start
 * from it, so a command behaves the same whoever runs it. Nothing registers itself on import.
 *
 * Domain code takes the parts it needs (`Pick<Services, ...>`, or `WorkDeps` inside a unit of work);
 * it never imports the transport (server/trpc/).
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from './config.js';
import { migrate, openDatabase } from './db/orm.js';
import { EventBus } from './events/bus.js';
import type { WorkDeps } from './events/unit-of-work.js';
import { Mailer, type EmailRetryPolicy } from './email/mailer.js';
import { JobQueue } from './jobs/queue.js';
import { resolveAppSecret, SecretBox } from './auth/secrets.js';
import { PresenceService } from './modules/live/presence.js';
import { loadStoredEvent } from './modules/live/stream.js';
import { createBillingProvider, type BillingProvider } from './modules/billing/provider.js';
import { PaymentMethodCache } from './modules/billing/payment-methods.js';
import type { BalanceObserver } from './modules/billing/ledger.js';
import { budgetAlertObserver } from './modules/billing/alerts.js';
import { autoTopUpObserver } from './modules/billing/auto-top-up.js';
import { InvalidationAcks } from './modules/gateway/invalidation.js';
import type { Gateway } from './modules/gateway/register.js';
import { WebhookDispatcher } from './modules/webhooks/dispatcher.js';

export interface Log {
  info(o: unknown, m?: string): void;
  warn(o: unknown, m?: string): void;
  error(o: unknown, m?: string): void;
}

/** Everything long-lived the procedures, jobs and commands need; built once per process by createServices. */
export interface Services extends WorkDeps {
  orm: MikroORM;
  bus: EventBus;
  mailer: Mailer;
  /** pg-boss, started on first use (email delivery and retries; the job runner's workers). */
  queue: JobQueue;
  config: Config;
  secretBox: SecretBox;
  presence: PresenceService;
  billing: BillingProvider;
  /** This process's payment-method lists per organization (evicted by billing events). */
  paymentMethods: PaymentMethodCache;
  /** The gateway's runtime, meter, routed targets, upstream pools and Vertex tokens (null in the admin CLI). */
  gateway: Gateway | null;
  /** Sends webhook deliveries; started with the job workers (server/jobs/boss.ts). */
  webhooks: WebhookDispatcher;
  appUrl: string;
  log: Log;
}

export interface CreateServicesOptions {
  databaseUrl: string;
  log: Log;
  /** Build the gateway (its cache listener, meter and upstream pools); off for the admin CLI. Default on. */
  gateway?: boolean;
  /** Run presence's expiry timer (the server does; one-shot commands need not). Default on. */
  presence?: boolean;
  /** Email retries through pg-boss (server/email/mailer.ts DEFAULT_EMAIL_RETRY); tests make them quick. */
  emailRetry?: Partial<EmailRetryPolicy>;
}

export interface ServicesRoot {
  services: Services;
  /** Stops everything createServices started, in order (after the HTTP server has closed). */
  close(): Promise<void>;
}

/** The balance observers, in the order they run inside the posting's transaction. */
export const BALANCE_OBSERVERS: readonly BalanceObserver[] = [budgetAlertObserver, autoTopUpObserver];

export async function createServices(config: Config, opts: CreateServicesOptions): Promise<ServicesRoot> {
  const { databaseUrl, log } = opts;
  const orm = await openDatabase(databaseUrl);
  await migrate(orm);
  const bus = new EventBus(databaseUrl, (id) => loadStoredEvent(orm.em.fork(), id), log);
  await bus.start();
  const queue = new JobQueue(databaseUrl, log);
  const mailer = new Mailer(orm, config.smtpUrl, config.mailFrom, log, { queue, retry: opts.emailRetry });
  const appSecret = resolveAppSecret(config.appSecret, config.dataDir);
  let publicUrl = config.appUrl ?? `http://localhost:${config.port}`;
  const billing = await createBillingProvider(config, orm, appSecret, () => publicUrl, log);
  const invalidation = new InvalidationAcks();
  const balanceObservers = BALANCE_OBSERVERS;
  const presence = new PresenceService({ orm, bus, mailer, balanceObservers, invalidation, log }, log);
  const services: Services = {
    orm,
    bus,
    mailer,
    queue,
    balanceObservers,
    invalidation,
    presence,
    billing,
    paymentMethods: new PaymentMethodCache(bus),
    gateway: null,
    webhooks: null as unknown as WebhookDispatcher,
    config,
    secretBox: new SecretBox(appSecret),
    get appUrl() {
      return publicUrl;
    },
    set appUrl(url: string) {
      publicUrl = url;
    },
    log,
  };
  services.webhooks = new WebhookDispatcher(services, databaseUrl);
  if (opts.gateway ?? true) {
    // Loaded only here: the admin CLI (gateway: false) starts without the gateway's code.
    const { createGateway } = await import('./modules/gateway/register.js');
    services.gateway = createGateway(services, databaseUrl);
    await services.gateway.start();
  }
  if (opts.presence ?? true) presence.start();

  return {
    services,
    async close() {
      presence.stop();
      await services.webhooks.stop();
      await services.gateway?.close();
      await mailer.drain();
      await queue.stop();
      await billing.stop();
      await bus.stop();
      await orm.close();
    },
  };
}
