'use strict'
// What the upstream suites' node tests (../upstream-*.test.js) assert: each
// suite's size, and the tests ours is excused from, each with its reason:
// only tests that replace functions whose seam ours cannot honour, or (dht)
// that call a dht-rpc method ours deliberately does not offer. README.md,
// "What differs", lists the same.
const assert = require('node:assert')

const MAP = "replaces the query stream's private _map"
const UPDATE_SEAM = 'replaces peer.update, which our stores do not call'
const ADAPTIVE = "reads or replaces the adaptive timer's JS internals"
const NO_UPDATE = "calls dht-rpc's update(), which ours does not offer"
const NAMED = 'passes a port over 65535, which ours refuses at once with a TypeError naming options.port (bad options are named); the reference sends it and reports the nodes\' refusal as "No close nodes responded"'

const SUITES = {
  hyperswarm: {
    title: 'hyperswarm 2.15.3',
    tests: 59,
    // None. 'maxServerSockets is actually a soft limit…' replaces Node's
    // net.connect, which ours does not use (TCP is dialled in the engine),
    // so its first four dialers land on TCP, not uTP; the next four find
    // TCP full (refused at the SYN, src/io/tcp_gate.rs) and, being LAN
    // peers, are dialled over uTP directly (src/swarm/race.rs,
    // LAN_UTP_TIMEOUT): 8 server sockets, as the test wants.
    excepted: {}
  },
  network: {
    title: '@hyperswarm/network 2.1.0',
    tests: 36,
    // None: the seams these tests use are honoured (nw.tcp.close() and
    // close() stop TCP at once, src/io/tcp_gate.rs; a discovery.holepunch
    // set by the application does the punch, network.js).
    excepted: {},
    // RACY: not excused, retried once when it is the only failure (see
    // define.js). Two announcers and a lookup start together; the test
    // wants the first announcer first and marked local, as its LAN answer
    // comes, and in the reference's one event loop it always beats the DHT.
    // Our DHT runs on the engines' threads, beside the JS thread that sends
    // that LAN answer on the next tick, so in some runs (about 1 in 5 full
    // runs on this 2-core machine) a DHT answer reports the announcer first,
    // as a public peer. Next step: README "What differs".
    racy: ['announce with lookup option emits peers that announce on a topic']
  },
  dht: {
    title: '@hyperswarm/dht 4.0.1',
    // index.test.js 28, put-get.test.js 70 (one of them, 'tbd', is empty).
    tests: 98,
    excepted: {
      // They replace the query stream's private `_map` to corrupt replies
      // on the way in; ours's streams get replies the engine has already
      // decoded and checked, never through `_map`.
      'corrupt localAddress data (wrong buffer length)': MAP,
      'corrupt localAddress data (nil port)': MAP,
      'corrupt peer data (wrong buffer length)': MAP,
      'corrupt peer data (nill buffer)': MAP,
      'immutable get corrupt hashes/values are filtered out': MAP,
      'mutable get corrupt values are filtered out': MAP,
      'mutable get corrupt signatures are filtered out': MAP,
      'mutable get corrupt salts are filtered out': MAP,
      // They replace `peer.update` to corrupt the record mutable.put sends;
      // ours's put is sent by the engine, so nothing is corrupted and the
      // 'warning' they wait for never comes (the first one waits until
      // tap's per-file timeout: see `hangs`).
      'mutable corrupt value update': UPDATE_SEAM,
      'mutable corrupt signature update': UPDATE_SEAM,
      'mutable corrupt salt update': UPDATE_SEAM,
      // They read guard-timeout's internals (`_adaptiveTimeout.timeout`,
      // `_idleTimeout`, `_onTimeout()`) and replace `persistent`, `query`
      // and `holepunchable`; ours's adaptive timer runs in the engine. Their
      // first check (an announce no persistent node takes fails with 'No
      // close nodes responded') is also in conformance-dht.test.js.
      'adaptive ephemerality': ADAPTIVE,
      'adaptive ephemerality - emits warning on dht joining error': ADAPTIVE,
      // It replaces the global clearTimeout and waits for the adaptive
      // timer to be cleared through it; ours's timer is native, so it waits
      // until tap's per-file timeout (see `hangs`).
      'adaptive ephemerality - timeout clears on destroy': ADAPTIVE,
      // They send raw store requests with dht-rpc's `update()`, which ours
      // does not offer (README: custom commands are not offered).
      'immutable corrupt hash update': NO_UPDATE,
      'mutable update with null value is handled': NO_UPDATE,
      'mutable update with null signature is handled': NO_UPDATE,
      'announce bad port': NAMED
    },
    // Excused tests that wait until tap kills their file (30 s); the tests
    // after them in that file are never reported, so those must be excused
    // too (they are: the last of index.test.js, the last six of
    // put-get.test.js).
    hangs: ['mutable corrupt value update', 'adaptive ephemerality - timeout clears on destroy']
  }
}

/**
 * Asserts a run: no hang, every test of the suite reported, every one passed
 * (ours: except the excused ones, which must still have run or started).
 */
function check (suite, impl, r) {
  const s = SUITES[suite]
  const excused = impl === 'ours' ? Object.keys(s.excepted) : []
  const tail = (r.out + r.err).split('\n').slice(-80).join('\n')
  assert.strictEqual(r.signal, null, `tap was killed (a hang):\n${tail}`)
  const unexpected = r.failed.filter((f) => !excused.includes(f))
  assert.deepStrictEqual(unexpected, [], `failed:\n${unexpected.map((f) => block(r.out, f)).join('\n')}\n--- last lines:\n${tail}`)
  // A test that hangs until tap's per-file timeout is not reported at all:
  // those missing must be excused ones. Where an excused test is known to
  // hang (`hangs`) and tap did cut a file, the excused tests after it never
  // start; the count below still demands every other test's pass.
  const cut = impl === 'ours' && (s.hangs || []).length > 0 && /\bsignal: SIGTERM\b/.test(r.out)
  for (const name of excused) assert.ok(cut || r.out.includes(`# Subtest: ${name}`), `${name} did not start`)
  assert.ok(r.passed >= s.tests - excused.length, `${r.passed} of ${s.tests} passed:\n${tail}`)
  assert.ok(r.total <= s.tests, `${r.total} tests reported, the suite has ${s.tests}`)
}

/** The TAP text of one test, from its `# Subtest:` line to the end of its result (at most 6000 characters). */
function block (out, name) {
  const start = out.indexOf(`# Subtest: ${name}`)
  if (start < 0) return `(no TAP block for ${name})`
  const end = out.indexOf(`- ${name}`, start + name.length + 12)
  const stop = end < 0 ? out.length : out.indexOf('\n  ...', end) + 6
  return out.slice(start, Math.min(stop < 6 ? out.length : stop, start + 6000))
}

module.exports = { SUITES, check }
