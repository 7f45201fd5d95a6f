// The lock feature's error codes (docs/api.md, "Locks").
import { AppError } from '../infra/errors.js'

export interface LockOwner {
  sessionId: string
  userId: number
  username: string
}

export const lockHeld = (owner: LockOwner) =>
  new AppError(409, 'LOCK_HELD', `This resource is locked by ${owner.username} in another session; try again once it is released.`, { owner })

export const lockNotFound = () => new AppError(404, 'LOCK_NOT_FOUND', 'Nobody holds a lock on this resource.')

export const notLockOwner = () => new AppError(403, 'NOT_LOCK_OWNER', 'Another session holds this lock; only that session can release it.')
