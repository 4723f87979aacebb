'use strict'
// Packet rules for one TCP port, inside the test's throwaway network
// namespace, each in an nftables table of its own that goes when the test
// ends. Every rule counts the SYNs that reach the port, so a test can prove
// a dial was attempted before it asserts that nothing connected, and the
// FINs and RSTs the port sends back (a listener closing what it accepted).
//   refuseTcp(t, port, 'reset')  every SYN is answered with a RST (the dial fails at once)
//   refuseTcp(t, port, 'drop')   every SYN is swallowed (the dial hangs)
//   countSyns(t, port)           SYNs are only counted
// Each returns `syns()`, the number of SYNs counted so far, with
// `syns.closes()`, the packets with FIN or RST sent from the port. UDP is
// untouched.
const { execFileSync } = require('child_process')
const { assertIsolated } = require('../helpers/netns')

let tables = 0

function hasNft () {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore', timeout: 5000 })
    return true
  } catch {
    return false
  }
}

function rule (t, port, verdict) {
  assertIsolated() // never outside the throwaway namespace
  const table = `conformance${process.pid}n${tables++}`
  const rules = [
    `table inet ${table} {`,
    '  counter syns { }',
    '  counter closes { }',
    '  chain input {',
    '    type filter hook input priority 0;',
    `    tcp dport ${port} tcp flags & (syn | ack) == syn counter name syns;`,
    `    tcp sport ${port} tcp flags & (fin | rst) != 0 counter name closes;`,
    verdict ? `    tcp dport ${port} ${verdict};` : '',
    '  }',
    '}',
    ''
  ].join('\n')
  execFileSync('nft', ['-f', '-'], { input: rules, timeout: 5000 })
  let gone = false
  t.after(() => {
    gone = true
    try { execFileSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore', timeout: 5000 }) } catch {}
  })
  const read = name => {
    if (gone) throw new Error('the rule is gone: read its counters inside the test')
    const out = JSON.parse(execFileSync('nft', ['-j', 'list', 'counter', 'inet', table, name], { timeout: 5000 }))
    return out.nftables.find(e => e.counter).counter.packets
  }
  const syns = () => read('syns')
  syns.closes = () => read('closes')
  return syns
}

/** `t` is the node:test context whose end lifts the rule. */
function refuseTcp (t, port, how = 'reset') {
  return rule(t, port, how === 'drop' ? 'drop' : 'reject with tcp reset')
}

function countSyns (t, port) {
  return rule(t, port, null)
}

module.exports = { hasNft, refuseTcp, countSyns }
