#!/usr/bin/env node
/** The `shardwise` executable: `command.ts` finds the command, each in a file of its own. */
import { main } from './command.js'

process.exitCode = await main(process.argv.slice(2))
// Work a handler left behind (a timed-out invocation's promise, a timer, an open socket) would
// keep the process alive after the command is done; Lambda freezes it. Leave once output had a
// moment to drain; the timer itself keeps nothing alive.
setTimeout(() => process.exit(), 1000).unref()
