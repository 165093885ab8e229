#!/usr/bin/env node
/** The `shardwise` executable: `command.ts` finds the command, each in a file of its own. */
import { main } from './command.js'

process.exitCode = await main(process.argv.slice(2))
