/**
 * Presence: who is looking at an organization now. Rows live in PostgreSQL (so every instance
 * sees every viewer) keyed by WebSocket connection, refreshed by the client's heartbeat and
 * dropped when the connection's stream ends or the heartbeat stops.
 */
import type { Viewer } from '../../../shared/events.js';
import { runCommand, type WorkDeps } from '../../events/unit-of-work.js';
import { emQuery, poolQuery, type Query } from './sql.js';
import type { RowOf } from '../../db/rows.js';
import type { User } from '../auth/entities.js';
import type { Organization } from '../organizations/entities.js';
import type { Presence } from './entities.js';

export const PRESENCE_TTL_SECONDS = 60;

export async function listViewers(query: Query, orgId: string): Promise<Viewer[]> {
  const rows = await query<(RowOf<typeof Presence, 'user_id' | 'page'> & RowOf<typeof User, 'name'>)[]>(
    `select distinct on (p.user_id) p.user_id, u.name, p.page
       from presence p join app_user u on u.id = p.user_id
      where p.org_id = ? and p.seen_at > now() - make_interval(secs => ?::double precision)
      order by p.user_id, p.seen_at desc`,
    [orgId, PRESENCE_TTL_SECONDS],
  );
  return rows.map((r) => ({ userId: r.user_id, name: r.name, page: r.page })).sort((a, b) => a.name.localeCompare(b.name));
}

export class PresenceService {
  private timer: NodeJS.Timeout | null = null;
  /**
   * `orgId connectionId` of this instance's connections that announced a page. A connection's
   * presence updates and its stream's end both happen on the instance holding the socket, so
   * streams that never announced anything end without a database round trip.
   */
  private readonly announced = new Set<string>();
  constructor(
    private readonly deps: WorkDeps,
    private readonly log: { warn(obj: unknown, msg?: string): void } = { warn: () => {} },
  ) {
    // A big organization's viewer list can outgrow a NOTIFY payload; receivers then read it afresh.
    const query = poolQuery(deps.orm);
    deps.bus.registerRefresher('presence', async (orgId) => ({ type: 'presence', orgId, actorId: null, at: new Date().toISOString(), viewers: await listViewers(query, orgId) }));
  }

  /**
   * Records that `connectionId` shows `page`; tells the organization when the set of viewers changes.
   * `overSocket`: the connection is a WebSocket whose stream will call leave(); otherwise (one HTTP
   * request) the row simply expires.
   */
  async update(orgId: string, connectionId: string, userId: string, page: string, overSocket = true): Promise<void> {
    if (overSocket) this.announced.add(`${orgId} ${connectionId}`);
    await runCommand(this.deps, userId, async (work) => {
      const rows = await work.em.execute<{ page: string | null }[]>(
        `with prev as (select page from presence where org_id = ? and connection_id = ?)
         insert into presence (org_id, connection_id, user_id, page, seen_at) values (?, ?, ?, ?, now())
         on conflict (org_id, connection_id) do update set page = excluded.page, seen_at = now(), user_id = excluded.user_id
         returning (select page from prev) as page`,
        [orgId, connectionId, orgId, connectionId, userId, page],
      );
      if (rows[0]?.page === page) return; // a heartbeat: nothing new to tell
      work.emit(orgId, { type: 'presence', viewers: await listViewers(emQuery(work.em), orgId) }, { store: false });
    });
  }

  async leave(orgId: string, connectionId: string): Promise<void> {
    if (!this.announced.delete(`${orgId} ${connectionId}`)) return;
    await runCommand(this.deps, null, async (work) => {
      const deleted = await work.em.execute<RowOf<typeof Presence, 'org_id'>[]>('delete from presence where org_id = ? and connection_id = ? returning org_id', [orgId, connectionId]);
      if (deleted.length === 0) return;
      const exists = await work.em.execute<RowOf<typeof Organization, 'id'>[]>('select id from organization where id = ?', [orgId]);
      if (exists.length === 0) return;
      work.emit(orgId, { type: 'presence', viewers: await listViewers(emQuery(work.em), orgId) }, { store: false });
    });
  }

  /** Drops viewers whose heartbeat stopped (a crashed tab or instance) and tells their organizations. */
  async sweep(): Promise<void> {
    const em = this.deps.orm.em.fork();
    const stale = await em.execute<RowOf<typeof Presence, 'org_id' | 'connection_id'>[]>(
      `delete from presence where seen_at < now() - make_interval(secs => ?::double precision) returning org_id, connection_id`,
      [PRESENCE_TTL_SECONDS],
    );
    for (const row of stale) this.announced.delete(`${row.org_id} ${row.connection_id}`);
    for (const orgId of new Set(stale.map((r) => r.org_id))) {
      await runCommand(this.deps, null, async (work) => {
        work.emit(orgId, { type: 'presence', viewers: await listViewers(emQuery(work.em), orgId) }, { store: false });
      });
    }
  }

  start(intervalMs = 20_000): void {
    // A sweep that fails (PostgreSQL restarting) is tried again at the next tick.
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => this.log.warn({ err }, 'presence sweep failed; retrying at the next tick')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
