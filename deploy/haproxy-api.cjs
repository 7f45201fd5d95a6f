// Sends one command to HAProxy's runtime API and prints its answer:
//
//   node deploy/haproxy-api.cjs HOST:PORT "show servers state"
//
// deploy/rolling-restart.sh runs it inside a Tessera container (node -e "$(cat …)" with
// the same two arguments), since the runtime API listens on the compose network only.
const { connect } = require('node:net')

const [target, command] = process.argv.slice(-2)
const at = target.lastIndexOf(':')
const socket = connect(Number(target.slice(at + 1)), target.slice(0, at), () => socket.end(`${command}\n`))
socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')))
socket.pipe(process.stdout)
socket.on('error', (err) => {
  process.stderr.write(`haproxy-api: ${target}: ${err.message}\n`)
  process.exit(1)
})
