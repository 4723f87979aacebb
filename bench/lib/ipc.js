'use strict'
// Talking to a bench child over IPC (guard.child / lab.spawn processes that
// send { type, ... } messages).

/** The child's next message of `type`; a message of type 'error' throws. */
async function expect (child, type, timeout) {
  const m = await child.wait(m => m.type === type || m.type === 'error', timeout, type)
  if (m.type === 'error') throw new Error(`${child.name}: ${m.message}`)
  return m
}

/** Sends `cmd` to `child` and waits (10 s) for its next reply of `type`. */
async function ask (child, cmd, type) {
  child.proc.setMaxListeners(0) // each wait adds an 'exit' listener
  const seen = child.messages.length
  child.send({ cmd })
  return child.wait(m => m.type === type && child.messages.indexOf(m) >= seen, 10000, type)
}

module.exports = { expect, ask }
