#!/usr/bin/env node
/** The `shardwise` executable; the commands live in `command.ts`. */
import { main } from './command.js'

process.exitCode = await main(process.argv.slice(2))
