'use strict'
// This machine's napi-rs platform names, `<platform>-<arch>[-<abi>]`, best
// first: the addon is `hyperswarm-native.<name>.node` and its prebuilt
// package `hyperswarm-native-<name>` (npm/<name>/).
// On Linux both libc flavours are tried, glibc first, rather than asking
// process.report: generating a report pages in about 2 MiB of Node's own code.
const { platform, arch } = process
const abis = platform === 'linux' ? ['-gnu', '-musl'] : platform === 'win32' ? ['-msvc'] : ['']

module.exports = abis.map(abi => `${platform}-${arch}${abi}`)
