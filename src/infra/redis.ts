// Redis connections. Made here, handed in; never opened at import time.
//
// One Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES): either way the rest of the
// code holds a `Redis`. A Cluster client is typed as one (ioredis's Cluster has the same
// commands); what differs is here: subscriber connections (sharded pub/sub, one connection
// per primary), pipelines that span slots (crossSlot) and key scans (every primary).
import { type ChainableCommander, Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis'
import { DependencyError } from './dependency-error.js'

/** Where Redis is: one server, or the seeds of a Cluster (which win when given). */
export interface RedisTarget {
  url: string
  clusterNodes?: string[] | null
}

/** The Redis target of a config. */
export const redisTarget = (c: { redisUrl: string; redisClusterNodes?: string[] | null }): RedisTarget => ({ url: c.redisUrl, clusterNodes: c.redisClusterNodes ?? null })

/** `host:port` seeds of REDIS_CLUSTER_NODES as ioredis takes them. */
export function clusterSeeds(nodes: string[]): ClusterNode[] {
  return nodes.map((n) => {
    const i = n.lastIndexOf(':')
    return { host: n.slice(0, i), port: Number(n.slice(i + 1)) }
  })
}

/** The Cluster client behind `redis`, or null on one Redis (see clusterAsRedis). */
export function clusterOf(redis: Redis): Cluster | null {
  const client: Redis | Cluster = redis
  return client instanceof Cluster ? client : null
}

/** Whether this client is a Cluster client. */
export const isCluster = (redis: Redis): boolean => clusterOf(redis) !== null

/**
 * A Cluster client handed out as a Redis: it has the same commands, and what differs is dealt
 * with in this file (isCluster). TypeScript sees no overlap between ioredis's two classes, so
 * this declaration is the one place where a Cluster becomes a Redis.
 */
function clusterAsRedis(cluster: Cluster): Redis
function clusterAsRedis(cluster: Cluster | Redis): Cluster | Redis {
  return cluster
}

/** A new client for the target (not yet connected): a Cluster client, typed as Redis, when the target is a Cluster. */
export function newRedisClient(target: RedisTarget, name: string): Redis {
  const options = redisOptions(target.url)
  if (!target.clusterNodes || target.clusterNodes.length === 0) return new Redis({ ...options, connectionName: name })
  // Each node's connection takes the URL's credentials and TLS, not its host, port or database.
  const { host: _host, port: _port, db: _db, lazyConnect: _lazy, ...node } = options
  const cluster = new Cluster(clusterSeeds(target.clusterNodes), {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
    // While a replica takes over a failed primary, commands wait and retry instead of failing at once.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    redisOptions: { ...node, connectionName: name },
  })
  return clusterAsRedis(cluster)
}

/**
 * Runs `issue`, with the commands it sends to one Redis in a single socket write (corked; a
 * Cluster client batches per node itself). For many commands at once (the tabs seen in a
 * tick); a few are cheaper written one by one (see redisOptions).
 */
export function inOneWrite<T>(redis: Redis, issue: () => T): T {
  const stream = !isCluster(redis) && redis.status === 'ready' ? redis.stream : null
  stream?.cork()
  try {
    return issue()
  } finally {
    stream?.uncork()
  }
}

/** A subscriber connection beside `redis` (see SUBSCRIBER_OPTIONS), on the same server or Cluster. */
export function duplicateSubscriber(redis: Redis, name: string): Redis {
  const cluster = clusterOf(redis)
  if (!cluster) return redis.duplicate({ ...SUBSCRIBER_OPTIONS, connectionName: name })
  return clusterAsRedis(
    cluster.duplicate([], {
      enableOfflineQueue: true,
      // Sharded pub/sub: one connection per primary, each hearing the shard channels of its slots.
      shardedSubscribers: true,
      redisOptions: { ...cluster.options.redisOptions, ...SUBSCRIBER_OPTIONS, connectionName: name },
    }),
  )
}

/**
 * A pipeline for commands of several slots. On one Redis it is a pipeline (one round trip);
 * on a Cluster, where a pipeline must stay on one node, each command is sent on its own
 * (auto-pipelining batches them per node). `exec` answers as a pipeline's does.
 */
export function crossSlot(redis: Redis): ChainableCommander {
  if (!isCluster(redis)) return redis.pipeline()
  const calls: [string, unknown[]][] = []
  const exec = async (): Promise<[Error | null, unknown][]> => {
    const settled = await Promise.allSettled(calls.map(([name, args]) => Reflect.apply(Reflect.get(redis, name), redis, args)))
    return settled.map((r) => (r.status === 'fulfilled' ? [null, r.value] : [r.reason as Error, null]))
  }
  const chain: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_target, prop) {
      if (prop === 'exec') return exec
      if (prop === 'length') return calls.length
      if (typeof prop !== 'string' || prop === 'then') return undefined
      return (...args: unknown[]) => {
        calls.push([prop, args])
        return chain
      }
    },
  })
  return chain
}

const HOW_TO_START = 'docker compose -f compose.dev.yaml up -d redis (or start your local Redis, e.g. redis-server --daemonize yes)'

/** The longest a Redis command may take before it fails (ioredis's commandTimeout). */
export const COMMAND_TIMEOUT_MS = 5_000

export function redisOptions(url: string): RedisOptions {
  return {
    lazyConnect: true,
    // Fail fast while Redis is away: requests answer 503 instead of hanging.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // While connections keep failing right after they open, a command already sent is sent
    // again on each new one and may never be answered: it fails after this long instead.
    // Tessera's commands take well under a millisecond; none of them blocks.
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    // Each command is written at once. ioredis's auto-pipelining (one write per tick's
    // commands) cost more CPU per command here than it saved, unless a tick held about 100
    // commands, and it held every command back until the loop's check phase
    // (docs/benchmarks.md, "Auto-pipelining off").
    enableAutoPipelining: false,
    connectionName: 'tessera',
    ...parse(url),
  }
}

/**
 * For a connection that only subscribes (duplicate the command connection with these).
 * Its commands wait for the connection instead of failing fast: an UNSUBSCRIBE refused
 * while it reconnects would leave the channel in ioredis's list, which ioredis subscribes
 * again after every reconnect. Close it with closeSubscriber: a QUIT would wait too.
 */
export const SUBSCRIBER_OPTIONS = { enableOfflineQueue: true, maxRetriesPerRequest: null } satisfies Partial<RedisOptions>

/** Closes a subscriber connection: QUIT when it is up, else at once (nothing it queued matters any more). */
export async function closeSubscriber(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') return redis.disconnect()
  await redis.quit().catch(() => redis.disconnect())
}

function parse(url: string): RedisOptions {
  const u = new URL(url)
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  }
}

/** What a refusal means and what to do, by the reply's first word. */
function refusal(err: Error): { problem: string; hint: string } {
  const word = err.message.split(' ', 1)[0]
  if (word === 'NOAUTH') return { problem: 'it requires a password (NOAUTH)', hint: 'Put it in REDIS_URL: redis://:password@host:port' }
  if (word === 'WRONGPASS') return { problem: 'the user name or password is wrong (WRONGPASS)', hint: 'Check the credentials in REDIS_URL' }
  return { problem: err.message, hint: 'Check REDIS_URL' }
}

/**
 * Opens a connection and waits for it, or throws a DependencyError naming the URL: Redis
 * unreachable, or answering but refusing (a wrong password, a database number it lacks).
 */
export async function connectRedis(target: string | RedisTarget, name = 'tessera'): Promise<Redis> {
  const t = typeof target === 'string' ? { url: target } : target
  const url = t.clusterNodes?.length ? `the Redis Cluster at ${t.clusterNodes.join(',')}` : t.url
  const redis = newRedisClient(t, name)
  redis.on('error', () => {}) // reconnects on its own; callers see failed commands
  // A refusal arrives as an error event; connect() itself only says the connection closed.
  let refused: Error | undefined
  const noteRefusal = (err: Error) => {
    if (err.name === 'ReplyError') refused ??= err
  }
  redis.on('error', noteRefusal)
  const connected = await redis.connect().then(
    () => true,
    () => false,
  )
  redis.off('error', noteRefusal)
  if (refused || !connected) {
    redis.disconnect()
    if (refused) {
      const { problem, hint } = refusal(refused)
      throw DependencyError.refused('Redis', url, problem, hint)
    }
    throw DependencyError.unreachable('Redis', url, HOW_TO_START)
  }
  return redis
}

/** Deletes every key under a prefix (tests and tenants); SCAN, never KEYS. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
  const cluster = clusterOf(redis)
  if (cluster) {
    // Each primary holds its own keys; each key is unlinked through the client, which knows its slot.
    let deleted = 0
    for (const node of cluster.nodes('master')) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        for (const n of await Promise.all(keys.map((key) => redis.unlink(key)))) deleted += n
      } while (cursor !== '0')
    }
    return deleted
  }
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}
