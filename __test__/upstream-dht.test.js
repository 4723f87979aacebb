'use strict'
// @hyperswarm/dht 4.0.1's own tests (test/index.test.js and
// test/put-get.test.js of its npm package, on its own runner, tap 14),
// against the reference and against ours (require('hyperswarm-native/dht')).
// Only the require of the package under test is changed, at run time (see
// upstream/run.js). Their bootstrap nodes are local (test/util.js: nodes
// with `bootstrap: []` on loopback); six tests construct a node with the
// default public bootstrap list, which is why this runs only inside the
// loopback namespace (run.js checks).
require('./upstream/define').defineUpstreamTests('dht')
