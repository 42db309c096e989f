/** What /metrics reads from a running app at scrape time: sockets, pools, the meter. */
import type { FastifyInstance } from 'fastify';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Services } from '../services.js';
import { observeApp, type PoolState } from './metrics.js';

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** The ORM's connection pool (knex's tarn pool): procedures, the gateway's reads, live streams. */
function ormPool(orm: MikroORM): PoolState | null {
  const pool = (orm.em.getConnection().getKnex().client as { pool?: TarnPool }).pool;
  return pool ? { used: pool.numUsed(), idle: pool.numFree(), waiting: pool.numPendingAcquires() } : null;
}

/** Registers the app's live state with the metrics; returns the function that removes it. */
export function observeBuiltApp(app: FastifyInstance, services: Services): () => void {
  return observeApp({
    openWebSockets: () => app.websocketServer?.clients.size ?? 0,
    pools() {
      const pools: Record<string, PoolState> = {};
      const orm = ormPool(services.orm);
      if (orm) pools.orm = orm;
      const meter = services.gateway?.meter.poolState();
      if (meter) pools.meter = meter;
      return pools;
    },
    meter() {
      const meter = services.gateway?.meter;
      if (!meter) return null;
      const { failures, dropped, stripped } = meter.stats;
      return { pending: meter.pendingCount, failures, dropped, stripped };
    },
  });
}
