import type { InferEntity } from '@mikro-orm/core';
import { defineEntity, p } from '@mikro-orm/postgresql';

/** Objects of the local test-payment provider (a Stripe-compatible fake; never used in production). */
export const TestStripeObject = defineEntity({
  name: 'TestStripeObject',
  tableName: 'test_stripe_object',
  properties: {
    id: p.string().primary(),
    type: p.string().length(100).index(),
    data: p.json<unknown>(),
    createdAt: p.datetime().defaultRaw('now()'),
  },
});
export type TestStripeObjectEntity = InferEntity<typeof TestStripeObject>;
