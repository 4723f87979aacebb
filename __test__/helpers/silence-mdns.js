'use strict'
// Hands the reference stack a silent stand-in for multicast-dns (its
// @hyperswarm/discovery takes no switch to turn mDNS off), so that it finds
// peers through the DHT only. Require it before the reference itself.
const Module = require('module')
const { EventEmitter } = require('events')

const load = Module._load
Module._load = function (request, ...rest) {
  if (request === 'multicast-dns') {
    return () => Object.assign(new EventEmitter(), { query () {}, response () {}, destroy () {} })
  }
  return load.call(this, request, ...rest)
}
