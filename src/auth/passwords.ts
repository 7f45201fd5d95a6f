// argon2id hashing. A fixed dummy hash is verified for unknown users so that "no such
// user" and "wrong password" take the same time.
import { hash, verify } from '@node-rs/argon2'
import { passwordIsUsername, passwordTooShort } from './errors.js'

// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
let dummyHash: Promise<string> | undefined

export const hashPassword = (password: string) => hash(password, OPTIONS)

export async function verifyPassword(storedHash: string | null, password: string): Promise<boolean> {
  if (storedHash === null) {
    dummyHash ??= hash('tessera-timing-equaliser', OPTIONS)
    await verify(await dummyHash, password).catch(() => false)
    return false
  }
  return verify(storedHash, password).catch(() => false)
}

export const MIN_PASSWORD_LENGTH = 10

export function checkPasswordStrength(password: string, username: string) {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw passwordTooShort(MIN_PASSWORD_LENGTH)
  }
  if (password.toLowerCase() === username.toLowerCase()) {
    throw passwordIsUsername()
  }
}
