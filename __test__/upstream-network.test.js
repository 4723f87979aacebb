'use strict'
// @hyperswarm/network 2.1.0's own tests (test/index.test.js of its npm
// package, on its own runner, tap 12), against the reference and against ours.
// Only the require of the package under test is changed, at run time (see
// upstream/run.js).
require('./upstream/define').defineUpstreamTests('network')
