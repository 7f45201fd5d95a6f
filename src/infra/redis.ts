// Redis connections. Made here, handed in; never opened at import time.
import { Redis, type RedisOptions } from 'ioredis'
import { DependencyError } from './dependency-error.js'

const HOW_TO_START = 'docker compose up -d redis (or start your local Redis, e.g. redis-server --daemonize yes)'

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

/** Opens a connection and waits for it, or throws a DependencyError naming the URL. */
export async function connectRedis(url: string, name = 'tessera'): Promise<Redis> {
  const redis = new Redis({ ...redisOptions(url), connectionName: name })
  redis.on('error', () => {}) // reconnects on its own; callers see failed commands
  try {
    await redis.connect()
  } catch {
    redis.disconnect()
    throw new DependencyError('Redis', url, HOW_TO_START)
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
