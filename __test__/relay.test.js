'use strict'
// The relay of last resort (issue 11 item 5) as shipped: the real
// `hyperswarm-dht --relay` in a lab host, and UDP clients in two others
// (helpers/relay-client.js, written from the README's wire format) that
// pair through it, exchange data both ways (a third host sending under one
// side's id from its own address gets nothing through), and then meet its caps: a
// second pair beyond `--relay-max-pairs 1` is refused with reason 1 (Full),
// and a pair sending over `--relay-rate` is throttled. The relay's counters
// come from its `relay stats {json}` line (SIGUSR1).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const crypto = require('crypto')
const { spawn } = require('child_process')
const { Lab, assertIsolated, withLab } = require('./helpers/netns')
const { dhtBinary } = require('./helpers/bins')
const { startRelay: startRelayIn, relayStats } = require('./helpers/relay-bin')

assertIsolated()
const CLIENT = path.join(__dirname, 'helpers', 'relay-client.js')
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const startRelay = (lab, args) => startRelayIn(lab.hosts[0].ns, args)
const stats = relayStats

const RATE = 20000

test('hyperswarm-dht --relay pairs two peers, carries data both ways and nothing under a stolen id, refuses a pair beyond --relay-max-pairs, and throttles a pair over --relay-rate', () => withLab(Lab.lan(4), async lab => {
  const relay = startRelay(lab, ['--host', lab.hosts[0].ip, '--port', '49737', '--ephemeral', '--relay', '--relay-port', '49800',
    '--relay-max-pairs', '1', '--relay-rate', String(RATE)])
  try {
    await relay.ready
    assert.match(relay.stderr, new RegExp(`relay on ${lab.hosts[0].ip.replace(/\./g, '\\.')}:49800`))
    const at = `${lab.hosts[0].ip}:49800`
    const [a, b, c] = [1, 2, 3].map(i => lab.spawn(i, CLIENT, [], { timeoutMs: 60000 }))
    await Promise.all([a, b, c].map(x => x.wait('ready')))

    // Pairing: A waits, B completes the pair, both are told.
    const token = crypto.randomBytes(32).toString('hex')
    a.send({ cmd: 'join', key: 'p', token, relay: at })
    const waiting = await a.wait('waiting', 5000)
    assert.ok(waiting.expiresIn > 0 && waiting.expiresIn <= 35, JSON.stringify(waiting))
    b.send({ cmd: 'join', key: 'p', token, relay: at })
    const [pairedA] = await Promise.all([a.wait('paired', 5000), b.wait('paired', 5000)])

    // Spoofing: C sends under A's id from its own address; nothing reaches
    // B (the data below is the control: it does).
    c.send({ cmd: 'forge', relay: at, id: pairedA.id, text: 'forged by c' })
    await c.wait('forged', 5000)

    // Data both ways.
    a.send({ cmd: 'send', key: 'p', text: 'hello from a' })
    b.send({ cmd: 'send', key: 'p', text: 'hello from b' })
    assert.strictEqual((await b.wait(m => m.type === 'data', 5000, 'data at b')).text, 'hello from a')
    assert.strictEqual((await a.wait(m => m.type === 'data', 5000, 'data at a')).text, 'hello from b')
    let s = await stats(relay)
    assert.strictEqual(s.pairs, 1)
    assert.strictEqual(s.forwarded, 2)
    assert.strictEqual(s.droppedSpoofed, 1)
    assert.ok(!b.messages.some(m => m.type === 'data' && m.text === 'forged by c'))

    // A second pair, beyond --relay-max-pairs 1: refused, reason 1 (Full).
    c.send({ cmd: 'join', key: 'q', token: crypto.randomBytes(32).toString('hex'), relay: at })
    const refused = await c.wait('refused', 5000)
    assert.strictEqual(refused.reason, 1)
    s = await stats(relay)
    assert.strictEqual(s.refusedFull, 1)
    assert.strictEqual(s.pairs, 1)

    // Over the rate: 1000-byte datagrams every 5 ms (200 kB/s, ten times
    // the cap) for 1.5 s. What B gets is the bucket (one second's worth)
    // plus the rate over the flood's time; the rest is dropped and counted.
    const started = Date.now()
    a.send({ cmd: 'flood', key: 'p', count: 300, size: 1000, everyMs: 5 })
    await a.wait('flooded', 15000)
    const elapsed = (Date.now() - started) / 1000
    await sleep(300)
    b.send({ cmd: 'count', key: 'p' })
    const got = await b.wait('count', 5000)
    s = await stats(relay)
    const floodDatagrams = got.datagrams - 1 // the hello
    assert.ok(s.droppedThrottled > 0, JSON.stringify(s))
    assert.strictEqual(floodDatagrams + s.droppedThrottled, 300, JSON.stringify({ got, s }))
    assert.ok(floodDatagrams * 1000 <= RATE + RATE * (elapsed + 0.5), `${floodDatagrams} datagrams in ${elapsed} s`)
    // Control: the cap passed a second's worth at least, so it throttles
    // rather than blocks.
    assert.ok(floodDatagrams >= RATE / 1000, `${floodDatagrams}`)

    // The stopped relay prints its counters and exits cleanly.
    relay.proc.kill('SIGTERM')
    const exit = await relay.exited
    assert.strictEqual(exit.code, 0, relay.stderr)
    assert.match(relay.stderr, /relay stats \{.*"pairsFormed":1/)
  } finally {
    if (relay.proc.exitCode === null) relay.proc.kill('SIGKILL')
    await relay.exited
  }
}))

test('hyperswarm-dht refuses --relay-* options without --relay, and names the caps in --help', async () => {
  const run = args => new Promise(resolve => {
    const p = spawn(dhtBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', d => { err += d })
    const t = setTimeout(() => p.kill('SIGKILL'), 10000)
    p.on('close', code => { clearTimeout(t); resolve({ code, err }) })
  })
  const bad = await run(['--relay-max-pairs', '1'])
  assert.strictEqual(bad.code, 2)
  assert.match(bad.err, /need --relay/)
  const zero = await run(['--relay', '--relay-rate', '0'])
  assert.strictEqual(zero.code, 2)
  assert.match(zero.err, /--relay-rate needs a whole number of at least 1/)
  const help = await run(['--help'])
  for (const flag of ['--relay-port', '--relay-max-pairs', '--relay-max-waiting', '--relay-max-per-ip', '--relay-rate', '--relay-lifetime', '--relay-wait', '--relay-idle']) {
    assert.ok(help.err.includes(flag), flag)
  }
  assert.match(help.err, /sees the bytes it carries/)
})
