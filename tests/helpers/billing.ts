/** Driving the local test-payment provider (the Stripe-compatible fake) like a customer would. */
import type { TestApp } from './app.js';
import type { TestMethod } from '../../server/dev/test-payments/fake-stripe.js';

export function fakeStripe(app: TestApp) {
  const fake = app.services.billing.fake;
  if (!fake) throw new Error('the test app runs without the local test-payment provider');
  return fake;
}

/** Submits the checkout page's form, as the browser does; returns the HTTP status and redirect. */
export async function payCheckout(app: TestApp, checkoutUrl: string, method: TestMethod = 'card'): Promise<{ status: number; location: string | null }> {
  const res = await fetch(checkoutUrl, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.url, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ method }).toString(),
  });
  await fakeStripe(app).drain();
  return { status: res.status, location: res.headers.get('location') };
}

export async function waitFor<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
