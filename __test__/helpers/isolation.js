'use strict'
// The one check behind every "refuse to run outside a lab" guard (tests,
// benchmarks, capture scripts): which network interfaces this process can
// see. /proc/net/dev lists interfaces that have no address too, which
// os.networkInterfaces() leaves out.
const fs = require('fs')
const os = require('os')

function interfacesSeen () {
  let fromProc = []
  try {
    fromProc = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)
      .map(l => l.split(':')[0].trim()).filter(Boolean)
  } catch {}
  const fromOs = Object.keys(os.networkInterfaces())
  return [...new Set([...fromProc, ...fromOs])]
}

/** Interfaces other than `lo`: empty inside a loopback-only namespace. */
function nonLoopback () {
  return interfacesSeen().filter(n => n !== 'lo')
}

module.exports = { interfacesSeen, nonLoopback }
