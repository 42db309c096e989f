/**
 * Prints each organization's usage and balance as they change:
 *
 *   GATEWAY_URL=http://localhost:3000 GATEWAY_TOKEN=... npx tsx examples/usage-monitor.ts [state.json]
 *
 * It follows `live.organization` for every organization the token's user belongs to (at start).
 * After each stored event it saves the event id per organization to the state file, so when it
 * is stopped and started again it resumes where it left off: events that happened while it was
 * down are printed once, none twice. (`usage` totals are not stored: missed ones show up in the
 * balance, through the `credits.changed` events that are.)
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { createGatewayClient, type LiveEvent, type OrganizationSubscription } from '../client-sdk/index.js';

export interface MonitorState {
  /** orgId -> id of the last stored event seen. */
  lastEventIds: Record<string, string>;
}

export interface MonitorOptions {
  url: string;
  token: string;
  stateFile: string;
  /** Where lines go (default: stdout). */
  print?: (line: string) => void;
  /** Every event as it is handled (for tests and extensions). */
  onEvent?: (orgId: string, event: LiveEvent, id: string | undefined) => void;
  retryDelayMs?: (attempt: number) => number;
}

export interface Monitor {
  /** Resolves once every organization's subscription is running. */
  ready: Promise<void>;
  /** Reconnect attempts happen by themselves; this counts socket opens. */
  opens(): number;
  stop(): Promise<void>;
}

export function readState(file: string): MonitorState {
  if (!existsSync(file)) return { lastEventIds: {} };
  return JSON.parse(readFileSync(file, 'utf8')) as MonitorState;
}

function writeState(file: string, state: MonitorState) {
  // Write-then-rename: a crash mid-write leaves the previous state, never half a file.
  writeFileSync(`${file}.tmp`, JSON.stringify(state));
  renameSync(`${file}.tmp`, file);
}

export function startUsageMonitor(opts: MonitorOptions): Monitor {
  const print = opts.print ?? ((line: string) => console.log(line));
  const state = readState(opts.stateFile);
  let opened = 0;
  const client = createGatewayClient({ url: opts.url, token: opts.token, WebSocket, retryDelayMs: opts.retryDelayMs, onOpen: () => void opened++ });
  const subscriptions: OrganizationSubscription[] = [];
  let stopping = false;

  const ready = (async () => {
    const orgs = await client.organization.list.query();
    await Promise.all(
      orgs.map(
        (org) =>
          new Promise<void>((resolve, reject) => {
            print(`${org.name}: balance $${org.credits}`);
            let started = false;
            subscriptions.push(
              client.subscribeOrganization(org.id, {
                lastEventId: state.lastEventIds[org.id] ?? null,
                onStarted: () => {
                  if (!started) resolve();
                  started = true;
                },
                onEvent: (event, id) => {
                  if (event.type === 'usage') print(`${org.name}: ${event.requests} request(s), $${event.cost}`);
                  else if (event.type === 'credits.changed') print(`${org.name}: balance $${event.credits}`);
                  opts.onEvent?.(org.id, event, id);
                  if (id !== undefined) {
                    state.lastEventIds[org.id] = id;
                    writeState(opts.stateFile, state);
                  }
                },
                onError: (err) => {
                  print(`${org.name}: subscription ended: ${err.message}`);
                  if (!started) reject(new Error(err.message));
                },
                onComplete: () => {
                  if (!stopping) print(`${org.name}: stream ended (no longer a member?)`);
                },
              }),
            );
          }),
      ),
    );
  })();

  return {
    ready,
    opens: () => opened,
    stop: async () => {
      stopping = true;
      for (const s of subscriptions) s.unsubscribe();
      await client.close();
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.env.GATEWAY_URL ?? 'http://localhost:3000';
  const token = process.env.GATEWAY_TOKEN;
  if (!token) {
    console.error('Set GATEWAY_TOKEN to a personal API token (Settings -> API tokens, or auth.tokens.create).');
    process.exit(1);
  }
  const monitor = startUsageMonitor({ url, token, stateFile: process.argv[2] ?? 'usage-monitor.state.json' });
  monitor.ready.then(
    () => console.error('following organizations; Ctrl-C to stop'),
    (err: unknown) => {
      console.error('could not start:', err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
  process.on('SIGINT', () => void monitor.stop().then(() => process.exit(0)));
}
