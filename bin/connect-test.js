#!/usr/bin/env node
'use strict'
// connect-test: join a topic on the swarm, report whether this network is
// hole-punchable, and print every peer and connection, piping stdin into
// every connection and every connection into stdout. The output follows
// @hyperswarm/connect-test 2.0.0 (spec/api-network.md §5), with the lines
// its README shows ("Testing hole-punchability...", "New connection!") and
// a verdict for both outcomes.
//
//   connect-test [topic] [--bootstrap host:port ...] [--local] [--help]
//
// --local runs everything on 127.0.0.1 in this process: a small DHT testnet
// (one ephemeral bootstrap node and four persistent nodes), this CLI's swarm
// (no mDNS) and a second swarm on the same topic that greets every
// connection, so the whole flow can be seen offline.
const crypto = require('crypto')
const util = require('util')
const network = require('..')

const USAGE = `Usage: connect-test [topic] [options]

Joins sha256(topic) (UTF-8; default 'connect-test') on the Hyperswarm DHT and
the LAN, announcing and looking up, and reports whether this network is
hole-punchable, every peer found and every connection made. Whatever you type
is sent to every connection; whatever peers send is printed.

Options:
  --bootstrap host:port  DHT bootstrap node; repeat for more (default: the
                         public Hyperswarm bootstrap nodes)
  --local                run a loopback DHT testnet and a local echo peer in
                         this process (no mDNS, nothing leaves 127.0.0.1)
  -h, --help             print this help

Ctrl-C shuts down.
`

const WINDOWS = process.platform === 'win32'
// figures 2.0.0, as the reference uses them.
const sym = WINDOWS
  ? { tick: '√', cross: '×', star: '*', play: '►', pointerSmall: '»', info: 'i', warning: '‼' }
  : { tick: '✔', cross: '✖', star: '★', play: '▶', pointerSmall: '›', info: 'ℹ', warning: '⚠' }

const LOCAL_DHT_NODES = 4
const LOCAL_READY_MS = 5000 // longest wait for the testnet to form
const ECHO_ANNOUNCE_MS = 3000 // longest wait for the echo peer's first DHT round
const SHUTDOWN_MS = 1500 // exit even if a destroy never calls back

function parseArgs (argv) {
  const out = { topic: null, bootstrap: [], local: false, help: false }
  let positional = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!positional && a === '--') {
      positional = true
    } else if (!positional && (a === '-h' || a === '--help')) {
      out.help = true
    } else if (!positional && a === '--local') {
      out.local = true
    } else if (!positional && (a === '--bootstrap' || a.startsWith('--bootstrap='))) {
      let v = a === '--bootstrap' ? argv[++i] : a.slice('--bootstrap='.length)
      if (v == null || v === '') throw new Error('--bootstrap needs a host:port')
      for (v of v.split(',')) {
        const m = /^(\[[^\]]+\]|[^\s:]+):(\d{1,5})$/.exec(v)
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`--bootstrap ${JSON.stringify(v)} is not host:port`)
        out.bootstrap.push(v)
      }
    } else if (!positional && a.startsWith('-') && a !== '-') {
      throw new Error(`unknown option ${a}`)
    } else if (out.topic === null) {
      out.topic = a
    } else {
      throw new Error(`unexpected argument ${JSON.stringify(a)} (only one topic)`)
    }
  }
  if (out.local && out.bootstrap.length) throw new Error('--local and --bootstrap do not go together')
  return out
}

let args
try {
  args = parseArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`connect-test: ${err.message}\n\n${USAGE}`)
  process.exit(2)
}
if (args.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}

const name = args.topic === null ? 'connect-test' : args.topic
const topic = crypto.createHash('sha256').update(name, 'utf8').digest()

const swarms = [] // everything to destroy on the way out
const dhtNodes = []
const timers = new Set()
let shuttingDown = false

function later (ms, fn) {
  const t = setTimeout(() => { timers.delete(t); fn() }, ms)
  timers.add(t)
  return t
}

// What each NAT class (natType(), from DHT nodes in 3 or more /24s) means.
const NAT_WORDS = {
  open: 'no NAT: peers reach our address directly',
  consistent: 'one public address and port for every peer: hole punching works',
  random: 'a new public port for every peer: only a peer with a consistent NAT or none can punch through',
  unknown: 'too few DHT nodes in distinct /24s have reported our address yet'
}

const addr = (host, port) => `${String(host).replace(/^::ffff:/, '')}:${port}`

function banner () {
  const s = sym.star
  console.log(`${s}   ${s}   ${s}   ${s}   ${s}   ${s}`)
  console.log(`  ${s}   ${s}   ${s}   ${s}   ${s}`)
  console.log('Hyperswarm Connect-Test')
  console.log(`  ${s}   ${s}   ${s}   ${s}   ${s}`)
  console.log(`${s}   ${s}   ${s}   ${s}   ${s}   ${s}`)
  console.log('')
}

// The details object printed like the reference: its members without the
// outer braces, one a line, indented (nested objects on one line).
function detailsBlock (details) {
  return Object.keys(details)
    .map(k => `    ${k}: ${util.inspect(details[k], { breakLength: Infinity, depth: 3 })}`)
    .join('\n') + '\n    '
}

function startSwarm (bootstrap) {
  const opts = {}
  if (bootstrap) opts.bootstrap = bootstrap
  if (args.local) opts.multicast = false
  const net = network(opts)
  swarms.push(net)
  let verdict = false

  net.on('peer', peer => console.log(`${sym.pointerSmall} New peer! ${addr(peer.host, peer.port)}`))
  net.on('error', err => console.error(`${sym.cross} There was an error ${err && err.message ? err.message : err}`))
  net.on('update', () => {
    console.log(`${sym.tick} Successfully updated`)
    if (verdict) return
    // Decided once, when the join's first DHT round has ended.
    verdict = true
    if (net.holepunchable()) console.log(`${sym.tick} Your network is hole-punchable!`)
    else console.log(`${sym.cross} Your network is not hole-punchable`)
    const nat = net.natType()
    console.log(`${sym.info} NAT type: ${nat} (${NAT_WORDS[nat] || 'not known'})`)
    console.log(`${sym.info} Waiting for connections...`)
  })
  net.on('connection', (socket, details) => {
    const where = details.client && details.peer
      ? addr(details.peer.host, details.peer.port)
      : addr(socket.remoteAddress, socket.remotePort)
    // Our uTP connections only come after a hole punch (ours or the peer's).
    // A relayed one (both NATs random) names the relay it runs through.
    const how = details.type === 'utp' ? 'utp (hole-punched)' : details.type === 'relay' ? `relay (through ${details.relay})` : details.type
    console.log(`${sym.pointerSmall} New connection! ${how} ${details.client ? 'client' : 'server'} ${where}`)
    console.log(detailsBlock(details))
    socket.on('close', () => {
      if (!shuttingDown) console.log(`${sym.cross} Connection has been dropped ${where}`)
    })
    // stdin into every connection, every connection into stdout. Unlike the
    // reference, the end of stdin does not end the connections: with stdin
    // on /dev/null they would be closed and redialled forever.
    process.stdin.pipe(socket, { end: false })
    socket.pipe(process.stdout)
  })

  console.log(`${sym.play} Joining hyperswarm under the sha256('${name}') topic ${topic.toString('hex')}`)
  console.log(`${sym.info} Testing hole-punchability...`)
  net.join(topic, { announce: true, lookup: true })
  return net
}

// --local: a loopback DHT testnet, and a second swarm on the topic.
async function startLocal () {
  console.log(`${sym.info} Starting a local DHT testnet on 127.0.0.1 (1 bootstrap + ${LOCAL_DHT_NODES} nodes) and a local echo peer`)
  const boot = network.DhtNode({ host: '127.0.0.1', ephemeral: true })
  dhtNodes.push(boot)
  const bootstrap = [`127.0.0.1:${boot.port}`]
  for (let i = 0; i < LOCAL_DHT_NODES; i++) {
    dhtNodes.push(network.DhtNode({ host: '127.0.0.1', bootstrap, ephemeral: false }))
  }
  // Until the nodes know each other, announcements land nowhere.
  const members = dhtNodes.slice(1)
  await waitFor(() => members.every(n => (n.nodes() || 0) >= LOCAL_DHT_NODES - 1), LOCAL_READY_MS)
  if (shuttingDown) return null

  const echo = network({ bootstrap, multicast: false, ephemeral: true })
  swarms.push(echo)
  echo.on('connection', socket => {
    socket.on('error', () => {})
    socket.resume() // whatever the CLI sends is dropped, not echoed back
    socket.write(`hello from the local echo peer (127.0.0.1:${echo.address() ? echo.address().port : '?'})\n`)
  })
  echo.on('error', () => {})
  echo.join(topic, { announce: true, lookup: true })
  // Announce first, so that the CLI's first round finds the echo peer.
  await new Promise(resolve => {
    const t = later(ECHO_ANNOUNCE_MS, resolve)
    echo.once('update', () => { clearTimeout(t); timers.delete(t); resolve() })
  })
  if (shuttingDown) return null
  console.log(`${sym.info} Local testnet bootstrap ${bootstrap[0]}, echo peer on 127.0.0.1:${echo.address().port}`)
  console.log('')
  return bootstrap
}

// --local, once the CLI has announced: a second peer that may not dial TCP,
// so its connection to the CLI is a hole punch through the testnet followed
// by uTP (on loopback TCP would otherwise always win the race).
function startPunchingPeer (bootstrap) {
  const peer = network({ bootstrap, multicast: false, ephemeral: true, tcp: false })
  swarms.push(peer)
  peer.on('connection', socket => {
    socket.on('error', () => {})
    socket.resume()
    socket.write('hello over hole-punched uTP from the local punching peer\n')
  })
  peer.on('error', () => {})
  peer.join(topic, { announce: false, lookup: true })
}

function waitFor (pred, ms) {
  return new Promise(resolve => {
    const deadline = Date.now() + ms
    const poll = () => {
      if (shuttingDown || pred() || Date.now() >= deadline) return resolve()
      later(20, poll)
    }
    poll()
  })
}

function shutdown (code = 0) {
  if (typeof code !== 'number') code = 0 // called as a signal handler
  if (shuttingDown) {
    process.exit(130) // a second Ctrl-C: do not wait
  }
  shuttingDown = true
  console.log('Shutting down ...')
  for (const t of timers) clearTimeout(t)
  timers.clear()
  process.stdin.unpipe()
  process.stdin.pause()
  const force = setTimeout(() => process.exit(code), SHUTDOWN_MS)
  force.unref()
  let pending = swarms.length + 1
  const done = () => {
    if (--pending > 0) return
    for (const n of dhtNodes) n.destroy()
    process.exit(code)
  }
  for (const s of swarms) s.destroy(done)
  done()
}

process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
// stdout closed under us (e.g. `| head`): stop quietly.
process.stdout.on('error', err => { if (err.code === 'EPIPE') process.exit(0) })

function fatal (err) {
  console.error(`${sym.cross} There was an error ${err && err.message ? err.message : err}`)
  process.exitCode = 1
  if (!shuttingDown) shutdown(1)
}

banner()
if (args.local) {
  startLocal().then(bootstrap => {
    if (!bootstrap) return
    const net = startSwarm(bootstrap)
    // After the CLI's first round has announced it, bring in the punching peer.
    net.once('update', () => { if (!shuttingDown) startPunchingPeer(bootstrap) })
  }).catch(fatal)
} else {
  try {
    startSwarm(args.bootstrap.length ? args.bootstrap : null)
  } catch (err) {
    fatal(err)
  }
}
