/**
 * The payment provider: the real `stripe` SDK, talking to Stripe (STRIPE_SECRET_KEY), to any
 * Stripe-compatible server (STRIPE_API_URL), or, with no keys, to the local test-payment provider
 * (server/dev/test-payments/, a development tool) started in-process on a loopback port ("Test
 * mode" in the dashboard). That tool is imported dynamically, only in that case and never when
 * NODE_ENV=production, so a production process never loads its code.
 */
import Stripe from 'stripe';
import { createHash } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../config.js';
import { PLANS } from '../../../shared/plans.js';
import type { FakeStripe } from '../../dev/test-payments/fake-stripe.js';

export interface BillingProvider {
  stripe: Stripe;
  webhookSecret: string;
  testMode: boolean;
  /** The in-process test-payment provider, when running without Stripe keys. */
  fake: FakeStripe | null;
  prices: { monthly: string; yearly: string };
  /** Where the test provider sends events (set once the app listens). */
  setWebhookUrl(url: string): void;
  stop(): Promise<void>;
}

export const TEST_PRICE_IDS = { monthly: 'price_test_pro_monthly', yearly: 'price_test_pro_yearly' } as const;

function stripeClient(secretKey: string, apiUrl?: string): Stripe {
  const target = apiUrl ? new URL(apiUrl) : null;
  return new Stripe(secretKey, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    telemetry: false,
    ...(target
      ? { host: target.hostname, port: target.port || (target.protocol === 'https:' ? 443 : 80), protocol: target.protocol === 'https:' ? 'https' : 'http' }
      : {}),
  });
}

export async function createBillingProvider(config: Config, orm: MikroORM, appSecret: string, publicUrl: () => string, log: { warn(o: unknown, m?: string): void }): Promise<BillingProvider> {
  if (config.stripe.secretKey) {
    return {
      stripe: stripeClient(config.stripe.secretKey, config.stripe.apiUrl),
      webhookSecret: config.stripe.webhookSecret!,
      testMode: config.stripe.secretKey.startsWith('sk_test_'),
      fake: null,
      prices: {
        monthly: config.stripe.priceProMonthly ?? TEST_PRICE_IDS.monthly,
        yearly: config.stripe.priceProYearly ?? TEST_PRICE_IDS.yearly,
      },
      setWebhookUrl() {},
      async stop() {},
    };
  }
  if (config.env === 'production' || process.env.NODE_ENV === 'production') {
    throw new Error('STRIPE_SECRET_KEY is required when NODE_ENV=production (the local test-payment provider is a development tool)');
  }
  const { FakeStripe } = await import('../../dev/test-payments/fake-stripe.js');
  // Test mode: a derived webhook secret, stable across restarts, never a real one.
  const webhookSecret = 'whsec_local_' + createHash('sha256').update('test-payments:' + appSecret).digest('hex').slice(0, 32);
  let webhookUrl: string | null = null;
  const pro = PLANS.pro.priceCents!;
  const fake = new FakeStripe({
    orm,
    webhookSecret,
    webhookUrl: () => webhookUrl,
    checkoutBaseUrl: () => `${publicUrl()}/test-payments`,
    prices: {
      [TEST_PRICE_IDS.monthly]: { unitAmount: pro.monthly, interval: 'month', product: 'Pro' },
      [TEST_PRICE_IDS.yearly]: { unitAmount: pro.yearly, interval: 'year', product: 'Pro' },
    },
    settleDelayMs: config.env === 'test' ? 300 : 3000,
    log,
  });
  const port = await fake.start();
  return {
    stripe: stripeClient('sk_test_local_provider', `http://127.0.0.1:${port}`),
    webhookSecret,
    testMode: true,
    fake,
    prices: TEST_PRICE_IDS,
    setWebhookUrl(url) {
      webhookUrl = url;
    },
    stop: () => fake.stop(),
  };
}
