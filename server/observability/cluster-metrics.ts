/**
 * Metrics across a node:cluster (WORKERS > 1): a scrape reaches one worker, which asks the primary
 * for the whole group's metrics; the primary collects every worker's registry over IPC
 * (prom-client's AggregatorRegistry, summing counters, histograms and gauges) and sends the text
 * back. So one scrape sees every worker, whichever answers it.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import { metricsRegistry } from './failures.js';

const REQUEST = 'gateway:cluster-metrics-request';
const RESPONSE = 'gateway:cluster-metrics-response';
/** Longer than prom-client's own 5 s wait for the workers. */
const WAIT_MS = 7_000;

interface Request {
  type: typeof REQUEST;
  id: string;
}
interface Response {
  type: typeof RESPONSE;
  id: string;
  text?: string;
  error?: string;
}

/** In the cluster primary: answers workers' requests for the group's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: Request) => {
    if (message?.type !== REQUEST) return;
    const reply = (r: Omit<Response, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: RESPONSE, id: message.id, ...r } satisfies Response);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

const waiting = new Map<string, (r: Response) => void>();
let workerReady = false;

/** In a worker: answers the primary's collection (this process's registry) and listens for replies. */
function startWorkerSide(): void {
  if (workerReady) return;
  workerReady = true;
  // Constructing one adds prom-client's worker listener; it reports the registries set here.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metricsRegistry]);
  process.on('message', (message: Response) => {
    if (message?.type !== RESPONSE) return;
    waiting.get(message.id)?.(message);
  });
}

/** Whether this process is a worker of a cluster whose primary serves the group's metrics. */
export function inClusterWorker(): boolean {
  return cluster.isWorker && process.env.GATEWAY_WORKER_INDEX !== undefined && typeof process.send === 'function';
}

/** In a worker: the Prometheus text of every worker of the cluster. */
export function clusterMetricsText(): Promise<string> {
  startWorkerSide();
  const id = randomUUID();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`the cluster primary did not send the metrics within ${WAIT_MS} ms`));
    }, WAIT_MS);
    waiting.set(id, (r) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (r.text !== undefined) resolve(r.text);
      else reject(new Error(r.error ?? 'no metrics'));
    });
    process.send!({ type: REQUEST, id } satisfies Request);
  });
}

/** Called at a worker's start, so the primary's collections find it listening before the first scrape. */
export function prepareClusterWorkerMetrics(): void {
  if (inClusterWorker()) startWorkerSide();
}
