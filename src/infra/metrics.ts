// prom-client metrics. One registry per app instance, so tests can build several apps.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface MetricSources {
  /** Read on every scrape: sessions by status. */
  sessionCounts?: () => Promise<Record<'active' | 'idle' | 'ended', number>>
  /** Read on every scrape: this process's PostgreSQL connections. */
  poolUsage?: () => { open: number; busy: number }
}

export function createMetrics() {
  const registry = new Registry()
  const sources: MetricSources = {}
  /** The database query the scrape under way makes for sessions by status. */
  let scrapeQueries: Promise<unknown> = Promise.resolve()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    sources,
    logins: new Counter({
      name: 'tessera_logins_total',
      help: 'Login attempts by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    lockouts: new Counter({ name: 'tessera_lockouts_total', help: 'Accounts locked after failed logins', registers: [registry] }),
    sessionsEnded: new Counter({
      name: 'tessera_sessions_ended_total',
      help: 'Sessions ended, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    sessionsByStatus: new Gauge({
      name: 'tessera_sessions',
      help: 'Sessions by status (active, idle, ended in the last 24 h)',
      labelNames: ['status'] as const,
      registers: [registry],
      async collect() {
        // PostgreSQL away: the scrape still answers, with the counts last read.
        const counting = sources.sessionCounts?.().catch(() => null)
        scrapeQueries = counting ?? Promise.resolve()
        const counts = await counting
        if (counts) for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      },
    }),
    httpDuration: new Histogram({
      name: 'tessera_http_request_duration_seconds',
      help: 'HTTP request latency by route and status class',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'tessera_events_published_total',
      help: 'Session events published on the bus, by type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    sockets: new Gauge({ name: 'tessera_ws_sockets', help: 'Open WebSockets on this node', registers: [registry] }),
    eventsDelivered: new Counter({
      name: 'tessera_events_delivered_total',
      help: 'Frames written to sockets, by type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    fanoutLatency: new Histogram({
      name: 'tessera_fanout_latency_seconds',
      help: 'From publishing an event to writing it to a local socket',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    handshake: new Histogram({
      name: 'tessera_ws_handshake_seconds',
      help: 'From a tab’s hello to its welcome (the session read, presence and the snapshot or replay), by whether it resumed',
      labelNames: ['resumed'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    resumes: new Counter({ name: 'tessera_ws_resumes_total', help: 'Tabs that resumed from hello.lastSeq (a replay, possibly of 0 events)', registers: [registry] }),
    resyncs: new Counter({ name: 'tessera_ws_resyncs_total', help: 'Tabs sent a full state because replay was impossible', registers: [registry] }),
    slowConsumerCloses: new Counter({
      name: 'tessera_ws_slow_consumer_closes_total',
      help: 'Sockets closed (1013) because their unsent data passed WS_MAX_BUFFERED_BYTES',
      registers: [registry],
    }),
    wsCloses: new Counter({
      name: 'tessera_ws_closes_total',
      help: 'Sockets closed by the server, by close code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    jobs: new Counter({
      name: 'tessera_jobs_total',
      help: 'Background jobs by queue and result: completed, failed (for good, once per job), retried (an attempt failed, another follows), stalled (its worker died)',
      labelNames: ['queue', 'result'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'tessera_job_duration_seconds',
      help: 'Background job durations by queue',
      labelNames: ['queue'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    sweepLag: new Gauge({
      name: 'tessera_sweep_lag_seconds',
      help: 'How late the latest idle or lifetime expiry ran after its deadline',
      registers: [registry],
    }),
    dbPool: new Gauge({ name: 'tessera_db_pool_max', help: 'PostgreSQL pool size of this process', registers: [registry] }),
    dbConnections: new Gauge({
      name: 'tessera_db_pool_connections',
      help: 'PostgreSQL connections of this process: open, and busy (running a query or in a transaction), as the driver counts them',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        // Collectors run side by side: wait for the scrape's own query, or it counts as busy.
        await scrapeQueries.catch(() => {})
        const usage = sources.poolUsage?.()
        if (usage) {
          this.set({ state: 'open' }, usage.open)
          this.set({ state: 'busy' }, usage.busy)
        }
      },
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
