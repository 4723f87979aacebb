'use strict'
// Hostile multicast DNS on a lab LAN (issue 10): an answer naming a host is
// ignored (an address is used), a query from off the link gets no answer
// (one from the link does), and repeated questions do not make us an
// amplifier. The attacker speaks the reference's dialect (dns-packet).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { Lab, assertIsolated, withLab } = require('./helpers/netns')
const { topic } = require('./helpers/data')

assertIsolated()
const PEER = path.join(__dirname, 'helpers', 'peer.js')
const ATTACKER = path.join(__dirname, 'helpers', 'mdns-attacker.js')

const withLan = fn => withLab(Lab.lan(2), fn)

async function start (lab, i, impl, swarm = {}) {
  const child = lab.spawn(i, PEER, [impl, JSON.stringify({ name: impl, swarm: { bootstrap: [], ...swarm } })])
  await child.wait('ready')
  return child
}

const ours = (lab, i, swarm) => start(lab, i, 'ours', swarm)

function attack (lab, i, opts) {
  const out = lab.exec(i, [process.execPath, ATTACKER, JSON.stringify(opts)], { timeout: 25000 })
  return JSON.parse(out.trim().split('\n').pop())
}

// Counts DNS queries host `i` sends. The lab host gets a route to the
// system's nameserver through its lab LAN, so that a lookup there is a
// packet the counter sees (it goes no further than the lab's bridge).
function countDnsQueries (lab, i) {
  const ns = require('fs').readFileSync('/etc/resolv.conf', 'utf8').match(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)/m)
  if (ns && !ns[1].startsWith('127.')) lab.exec(i, ['ip', 'route', 'add', ns[1] + '/32', 'dev', 'eth0'])
  const rules = [
    'table inet hsndns {',
    '  counter dns { }',
    '  chain out { type filter hook output priority 0; udp dport 53 counter name dns; tcp dport 53 counter name dns; }',
    '}', ''
  ].join('\n')
  lab.exec(i, ['nft', '-f', '-'], { input: rules })
  return () => {
    const out = JSON.parse(lab.exec(i, ['nft', '-j', 'list', 'counter', 'inet', 'hsndns', 'dns']))
    return out.nftables.find(e => e.counter).counter.packets
  }
}

async function stats (child) {
  child.messages = child.messages.filter(m => m.type !== 'stats')
  child.send({ cmd: 'stats' })
  return (await child.wait('stats')).stats
}

test('an mDNS answer naming a host is ignored; the same answer naming an address is used', () => withLan(async lab => {
  const t = topic('hostile mdns hostname')
  const dnsQueries = countDnsQueries(lab, 0)
  // Control for the counter: a lookup on that host is seen.
  lab.exec(0, [process.execPath, '-e', "require('dns').lookup('control.example.com', () => {}); setTimeout(() => process.exit(0), 500)"])
  const afterControl = dnsQueries()
  assert.ok(afterControl > 0, 'control: a name lookup on the host sends DNS queries the counter sees')
  const looker = await ours(lab, 0)
  looker.send({ cmd: 'join', topic: t, opts: { announce: false, lookup: true } })
  await looker.wait('joined')
  // In order, from one socket: two names, then (control) an address.
  attack(lab, 1, {
    cmd: 'answers',
    topic: t,
    answers: [{ target: 'evil.example.com', port: 4000 }, { target: 'localhost', port: 4001 }, { target: '10.201.0.2', port: 4002 }]
  })
  const found = await looker.wait(m => m.type === 'peer' && m.port === 4002, 10000, 'the peer named by address')
  assert.strictEqual(found.host, '10.201.0.2')
  assert.strictEqual(found.local, true)
  // The answers before it were handled first (same socket, in order) and gave no peer.
  const named = looker.messages.filter(m => m.type === 'peer' && (m.port === 4000 || m.port === 4001))
  assert.deepStrictEqual(named, [])
  const s = await stats(looker)
  assert.strictEqual(s.mdnsBadTargets, 2)
  // And the names were never looked up.
  assert.strictEqual(dnsQueries(), afterControl, 'a name from an mDNS answer was resolved')
}))

test('an mDNS query from off the link is not answered; one from the link is', () => withLan(async lab => {
  const t = topic('hostile mdns off link')
  const announcer = await ours(lab, 0)
  announcer.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: false } })
  await announcer.wait('joined')
  // The attacker's host also holds an address of another subnet on the same wire.
  lab.exec(1, ['ip', 'addr', 'add', '192.168.77.2/24', 'dev', 'eth0'])
  const off = attack(lab, 1, { cmd: 'query', topic: t, from: '192.168.77.2', count: 3, gapMs: 50, listenMs: 1500 })
  // Control, same wire, same listener code: a query from the link's subnet.
  const on = attack(lab, 1, { cmd: 'query', topic: t, from: '10.201.0.2', count: 1, listenMs: 1500 })
  const answersTo = (r, ip) => r.heard.filter(h => h.referrer === ip)
  assert.deepStrictEqual(answersTo(off, '192.168.77.2'), [], 'a query from off the link was answered')
  assert.strictEqual(answersTo(on, '10.201.0.2').length, 1, 'control: the on-link query is answered')
  assert.strictEqual(answersTo(on, '10.201.0.2')[0].from, '10.201.0.1')
  const s = await stats(announcer)
  assert.strictEqual(s.mdnsOffLink, 3)
  assert.strictEqual(s.mdnsQueriesAnswered, 1)
}))

test('repeated mDNS questions are rate-limited (bytes out vs in)', () => withLan(async lab => {
  const t = topic('hostile mdns repeat')
  const announcer = await ours(lab, 0)
  announcer.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: false } })
  await announcer.wait('joined')
  // ~2.1 KB queries of one question asked 33 times, 100 of them over ~1 s.
  const r = attack(lab, 1, { cmd: 'query', topic: t, repeat: 33, count: 100, gapMs: 10, listenMs: 2500 })
  const answers = r.heard.filter(h => h.referrer !== null)
  const out = answers.reduce((n, h) => n + h.bytes, 0)
  console.log(`# repeated questions: ${r.queries} queries of ${r.queryBytes} B = ${r.sentBytes} B in; ` +
    `${answers.length} answers = ${out} B out (ratio ${(out / r.sentBytes).toFixed(4)})`)
  assert.ok(r.queryBytes > 2000, `query of ${r.queryBytes} B`)
  assert.ok(answers.length >= 1, 'control: the querier is answered')
  // One answer now and one per further second of queries, never one per question.
  assert.ok(answers.length <= 4, `${answers.length} answers`)
  for (const a of answers) assert.strictEqual(a.bytes, 242)
  assert.ok(out * 50 < r.sentBytes, `${out} B out for ${r.sentBytes} B in`)
  const s = await stats(announcer)
  assert.strictEqual(s.mdnsRepeatedQuestions, 100 * 32)
}))

test('for comparison: the reference (hyperswarm 2.15.3) answers off-link and repeated questions in full', () => withLan(async lab => {
  const t = topic('hostile mdns reference')
  const ref = await start(lab, 0, 'hyperswarm')
  ref.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: false } })
  await ref.wait('joined')
  lab.exec(1, ['ip', 'addr', 'add', '192.168.77.2/24', 'dev', 'eth0'])
  const off = attack(lab, 1, { cmd: 'query', topic: t, from: '192.168.77.2', count: 3, gapMs: 50, listenMs: 1500 })
  const offAnswers = off.heard.filter(h => h.referrer === '192.168.77.2').length
  const r = attack(lab, 1, { cmd: 'query', topic: t, repeat: 33, count: 100, gapMs: 10, listenMs: 2500 })
  const answers = r.heard.filter(h => h.referrer !== null)
  const out = answers.reduce((n, h) => n + h.bytes, 0)
  console.log(`# reference: ${offAnswers} of 3 off-link queries answered; repeated questions: ${r.sentBytes} B in, ` +
    `${answers.length} answers = ${out} B out (ratio ${(out / r.sentBytes).toFixed(2)})`)
  assert.strictEqual(offAnswers, 3)
  assert.ok(out > r.sentBytes, 'the reference amplifies repeated questions')
}))
