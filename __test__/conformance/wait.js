'use strict'
// Bounded waiting for the conformance suites: every wait rejects after a
// limit, so a case that never gets its event fails instead of hanging.
const crypto = require('crypto')
const net = require('net')
const dgram = require('dgram')
const fs = require('fs')

/** Upper bound for any single thing a case waits for. */
const WAIT = 10000

const randomTopic = () => crypto.randomBytes(32)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Resolves like `promise`, or rejects once `ms` have passed. */
function within (promise, what, ms = WAIT) {
  let timer
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

/** Calls `start(callback)` and resolves with the callback's arguments. */
function viaCallback (start, what, ms) {
  return within(new Promise(resolve => start((...args) => resolve(args))), what, ms)
}

/** The arguments of the next `event` from `emitter`. */
function nextEvent (emitter, event, what, ms) {
  return within(new Promise(resolve => emitter.once(event, (...args) => resolve(args))), what || event, ms)
}

/** The kernel's ephemeral port range [low, high] (what bind(0) and connect pick from). */
function ephemeralRange () {
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low > 0 && high >= low) return [low, high]
  } catch {}
  return [32768, 60999] // Linux's default
}

/**
 * A random port outside the ephemeral range, so that no bind(0) or outgoing
 * connection in this namespace takes it by chance between the moment a
 * test picks it and the moment it binds it (the APIs under test take a port
 * number, so a bound socket cannot be handed over instead). `span` ports
 * from the one returned are outside the range too.
 */
function fixedPort (span = 1) {
  const [low, high] = ephemeralRange()
  if (low - span > 10000) return 10000 + crypto.randomInt(low - span - 10000)
  if (65535 - span > high + 1) return high + 1 + crypto.randomInt(65535 - span - high)
  throw new Error(`no room outside the ephemeral range ${low}-${high}`)
}

async function listenTcp (port) {
  const server = net.createServer()
  await within(new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, resolve)
  }), `a TCP listener on ${port}`)
  return server
}

async function bindUdp (port) {
  const socket = dgram.createSocket('udp4')
  await within(new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, resolve)
  }), `a UDP socket on ${port}`)
  return socket
}

/** Closes a TCP server or UDP socket and waits until it is gone. */
const shut = handle => new Promise(resolve => handle.close(() => resolve()))

/**
 * A port outside the ephemeral range that is free for TCP and UDP right now,
 * with the `span - 1` ports after it (nothing listens on any of them).
 */
async function freePort (span = 1) {
  for (let tries = 0; tries < 50; tries++) {
    const port = fixedPort(span)
    try {
      for (let p = port; p < port + span; p++) {
        await shut(await listenTcp(p))
        await shut(await bindUdp(p))
      }
      return port
    } catch {}
  }
  throw new Error('found no free port')
}

module.exports = { ephemeralRange, WAIT, randomTopic, sleep, within, viaCallback, nextEvent, fixedPort, listenTcp, bindUdp, shut, freePort }
