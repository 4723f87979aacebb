'use strict'
// Makes TCP to one port fail, inside the test's throwaway network namespace,
// so a suite can watch what happens when only UDP gets through: `reset`
// answers every SYN with a RST (the dial fails at once), `drop` swallows
// them (the dial hangs). UDP is untouched. The rule lives in an nftables
// table of its own and is removed when the test ends.
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

/** `t` is the node:test context whose end lifts the rule. */
function refuseTcp (t, port, how = 'reset') {
  assertIsolated() // never outside the throwaway namespace
  const verdict = how === 'drop' ? 'drop' : 'reject with tcp reset'
  const table = `conformance${process.pid}n${tables++}`
  const rules = [
    `table inet ${table} {`,
    '  chain input {',
    '    type filter hook input priority 0;',
    `    tcp dport ${port} ${verdict};`,
    '  }',
    '}',
    ''
  ].join('\n')
  execFileSync('nft', ['-f', '-'], { input: rules, timeout: 5000 })
  t.after(() => {
    try { execFileSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore', timeout: 5000 }) } catch {}
  })
}

module.exports = { hasNft, refuseTcp }
