// Redis connections. Made here, handed in; never opened at import time.
import { Redis, type RedisOptions } from 'ioredis'
import { DependencyError } from './dependency-error.js'

const HOW_TO_START = 'docker compose -f compose.dev.yaml up -d redis (or start your local Redis, e.g. redis-server --daemonize yes)'

export function redisOptions(url: string): RedisOptions {
  return {
    lazyConnect: true,
    // Fail fast while Redis is away: requests answer 503 instead of hanging.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    // Commands issued in the same tick share one write: a request's few round trips become one.
    enableAutoPipelining: true,
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
export async function connectRedis(url: string, name = 'tessera'): Promise<Redis> {
  const redis = new Redis({ ...redisOptions(url), connectionName: name })
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
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}
