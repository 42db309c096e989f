/**
 * `npm run demo`: a local OpenAI/Anthropic-compatible fake upstream and a traffic generator against
 * the running product, so the dashboard moves within a minute of install.
 *
 * - If nothing answers at APP_URL (default http://localhost:3000), the product is started here
 *   (`npm start`) with its operator keys pointing at the fake upstream, so calls are paid with
 *   credits and the balance moves too.
 * - If the product is already running, the demo adds a custom provider key named `demo` pointing at
 *   the fake upstream and calls `demo/<model>` (the organization's own key: cost shown, not charged),
 *   unless the running product's operator keys already serve the catalog models.
 *
 * Sign in as demo@example.com / "demo password 1" to watch. Ctrl-C stops the traffic (and the
 * product, if the demo started it). DEMO_RPS (default 4), DEMO_SECONDS (default: until Ctrl-C),
 * DEMO_UPSTREAM_PORT (default 4010).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import OpenAI from 'openai';
import { startFakeUpstream } from '../tests/helpers/fake-upstream.js';
import { browserClient } from '../tests/helpers/client.js';

const APP_URL = (process.env.APP_URL ?? `http://localhost:${process.env.PORT ?? 3000}`).replace(/\/$/, '');
const RPS = Number(process.env.DEMO_RPS ?? 4);
const SECONDS = Number(process.env.DEMO_SECONDS ?? 0);
const EMAIL = 'demo@example.com';
const PASSWORD = 'demo password 1';

const upstream = await startFakeUpstream({ port: Number(process.env.DEMO_UPSTREAM_PORT ?? 4010), record: false });
console.log(`fake upstream (OpenAI + Anthropic formats) on ${upstream.url}`);

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(`${APP_URL}/healthz`, { signal: AbortSignal.timeout(1500) })).ok;
  } catch {
    return false;
  }
}

let product: ChildProcess | null = null;
if (!(await healthy())) {
  console.log(`nothing answers at ${APP_URL}: starting the product (npm start) with its upstreams pointing at the fake...`);
  // Its own process group, so stopping the demo can signal npm, the shell and the server together.
  product = spawn('npm', ['start'], {
    stdio: 'inherit',
    detached: true,
    env: {
      ...process.env,
      OPENAI_API_KEY: 'demo-operator-openai',
      OPENAI_BASE_URL: `${upstream.url}/v1`,
      ANTHROPIC_API_KEY: 'demo-operator-anthropic',
      ANTHROPIC_BASE_URL: upstream.url,
      GEMINI_API_KEY: 'demo-operator-gemini',
      GEMINI_BASE_URL: `${upstream.url}/v1`,
      DASHSCOPE_API_KEY: 'demo-operator-qwen',
      DASHSCOPE_BASE_URL: `${upstream.url}/v1`,
      // The demo's `demo` provider key points at the fake upstream on this machine (a private address).
      GATEWAY_ALLOW_PRIVATE_UPSTREAMS: 'true',
    },
  });
  const deadline = Date.now() + 180_000;
  while (!(await healthy())) {
    if (Date.now() > deadline || product.exitCode !== null) throw new Error('the product did not start; see its output above');
    await new Promise((r) => setTimeout(r, 500));
  }
}

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping the demo');
  if (product?.pid && product.exitCode === null) {
    // SIGTERM to the whole group (npm alone would not pass it on to the server); the server drains
    // its usage before it exits, so wait for it (at most a minute).
    const group = -product.pid;
    try {
      process.kill(group, 'SIGTERM');
    } catch {
      product.kill('SIGTERM');
    }
    // npm leaves at once; the group is empty when the server (and its PostgreSQL) are gone too.
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      try {
        process.kill(group, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await upstream.close();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

// The demo user, organization, credits, keys.
const browser = browserClient(APP_URL);
const api = browser.client;
const signedIn = await api.auth.signIn.mutate({ email: EMAIL, password: PASSWORD }).catch(() => null);
if (!signedIn) await api.auth.signUp.mutate({ email: EMAIL, password: PASSWORD, name: 'Demo User' });
const orgs = await api.organization.list.query();
const orgId = orgs.find((o) => o.name === 'Demo Org')?.id ?? (await api.organization.create.mutate({ name: 'Demo Org' })).organization.id;
const projects = await api.project.list.query({ orgId });
const projectId = projects[0]!.id;

const overview = await api.billing.overview.query({ orgId });
if (Number(overview.credits) < 5) {
  try {
    const { checkoutUrl } = await api.billing.purchaseCredits.mutate({ orgId, amount: 50 });
    const paid = await fetch(checkoutUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: APP_URL, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ method: 'card' }).toString(),
    });
    console.log(paid.status < 400 ? 'bought $50 of test credits with the local test-payment provider' : `could not buy test credits (HTTP ${paid.status})`);
  } catch (err) {
    console.log(`could not buy test credits (${(err as Error).message}); calls will use the demo provider key`);
  }
}

const providerKeys = await api.providerKey.list.query({ orgId });
try {
  if (!providerKeys.some((k) => k.name === 'demo')) {
    await api.providerKey.create.mutate({ orgId, provider: 'custom', name: 'demo', baseUrl: `${upstream.url}/v1`, key: 'demo-upstream-key' });
  } else {
    const demo = providerKeys.find((k) => k.name === 'demo')!;
    await api.providerKey.update.mutate({ providerKeyId: demo.id, baseUrl: `${upstream.url}/v1`, status: 'active' });
  }
} catch (err) {
  // A product started without GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true refuses a provider URL on this machine, as it should.
  console.log(
    `the running product refused the demo provider key: ${(err as Error).message}\n` +
      'restart it with GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true (the fake upstream runs on this machine), or stop it and let the demo start it',
  );
}
const { key } = await api.apiKey.create.mutate({ projectId, name: `demo traffic ${new Date().toISOString().slice(0, 16)}` });

const client = new OpenAI({ baseURL: `${APP_URL}/v1`, apiKey: key, maxRetries: 0 });
const listed = new Set((await client.models.list()).data.map((m) => m.id));
const operatorModels = ['openai/gpt-4o-mini', 'openai/gpt-4.1-nano', 'anthropic/claude-haiku-4-5-20251001', 'google/gemini-2.5-flash', 'alibaba/qwen-plus'].filter((m) => listed.has(m));
const models = operatorModels.length > 0 ? operatorModels : ['demo/gpt-4o-mini', 'demo/claude-haiku-4-5', 'demo/gemini-2.5-flash'];
console.log(`\nsending ~${RPS} requests/s to ${models.join(', ')}`);
console.log(`open ${APP_URL} and sign in as ${EMAIL} / "${PASSWORD}" to watch the dashboard move\n`);

const words = 'the quick brown fox jumps over the lazy dog while the gateway meters every token'.split(' ');
let sent = 0;
let failed = 0;
async function oneCall() {
  const model = models[Math.floor(Math.random() * models.length)]!;
  const prompt = Array.from({ length: 5 + Math.floor(Math.random() * 60) }, () => words[Math.floor(Math.random() * words.length)]).join(' ');
  const failure = Math.random() < 0.03 ? ' [status:500]' : '';
  const content = `${prompt} [chunks:${5 + Math.floor(Math.random() * 120)}] [slow:${Math.floor(Math.random() * 8)}]${failure}`;
  try {
    if (Math.random() < 0.5) {
      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content }], stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) void chunk;
    } else {
      await client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
    }
  } catch {
    failed++;
  }
  sent++;
}

const started = Date.now();
const timer = setInterval(() => {
  if (SECONDS && Date.now() - started > SECONDS * 1000) {
    clearInterval(timer);
    void shutdown();
    return;
  }
  const burst = Math.max(1, Math.round(RPS * (0.5 + Math.random())));
  for (let i = 0; i < burst; i++) void oneCall();
}, 1000);
setInterval(() => console.log(`${sent} calls sent, ${failed} answered with an error (some on purpose)`), 10_000).unref();
