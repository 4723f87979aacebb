'use strict'
// Bounded waiting for the conformance suites: every wait rejects after a
// limit, so a case that never gets its event fails instead of hanging.
const crypto = require('crypto')
const net = require('net')
const dgram = require('dgram')

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

/** A port below the ephemeral range, so nothing else here picks it by chance. */
const fixedPort = () => 20000 + crypto.randomInt(10000)

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

/** A port that is free for TCP and UDP right now (nothing listens on it). */
async function freePort () {
  for (let tries = 0; tries < 50; tries++) {
    const port = fixedPort()
    try {
      await shut(await listenTcp(port))
      await shut(await bindUdp(port))
      return port
    } catch {}
  }
  throw new Error('found no free port')
}

module.exports = { WAIT, randomTopic, sleep, within, viaCallback, nextEvent, fixedPort, listenTcp, bindUdp, shut, freePort }
