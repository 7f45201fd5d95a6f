// Tessera's React binding (the package's `./react` entry): the SDK client in context.
export type { SessionContextValue } from './context.js'
export { ErrorBoundary } from './ErrorBoundary.js'
export type { SessionAction, SessionSnapshot } from './reducer.js'
export { SessionControls } from './SessionControls.js'
export { SessionProvider } from './SessionProvider.js'
export { SessionResetModal } from './SessionResetModal.js'
export { useSession } from './useSession.js'
export { type UUIDStatus, useSessionUUID } from './useSessionUUID.js'
