/**
 * Durable checkpoints (`--checkpoint-file`): each shard's checkpoint and open tumbling windows,
 * kept in a JSON file so a new run resumes where the last one stopped, as Lambda resumes from the
 * checkpoint it stores. Written after each settled batch and each read that filtered records
 * out, atomically: a temporary file beside it, then a rename, so a run killed mid-write leaves
 * the previous file whole.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { ConfigurationError, messageOf } from '@shardwise/core'
import type { TimeWindow } from './lane.js'

/** A lane's open tumbling window and the state the function last answered for it. */
export interface StoredWindow extends TimeWindow {
  state: unknown
}

export interface ShardCheckpoint {
  /** The last record done (checkpointed, discarded or filtered out): the next run reads after it. */
  sequenceNumber?: string
  /**
   * Epoch ms at which a shard with nothing done yet was first read from `LATEST`: the next run
   * reads from that time, so the records put while no run was reading are not skipped.
   */
  sinceMs?: number
  /** Each lane's open window, by lane; `null` where none is open. */
  windows?: Array<StoredWindow | null>
}

interface CheckpointDocument {
  /** The stream's ARN: a file is never applied to another stream. */
  stream: string
  shards: Record<string, ShardCheckpoint>
}

export class CheckpointFile {
  private writing: Promise<void> | undefined
  private again = false

  private constructor(
    readonly path: string,
    private readonly document: CheckpointDocument,
  ) {}

  /** The file's checkpoints for `streamArn`; none when the file does not exist yet. */
  static async open(path: string, streamArn: string): Promise<CheckpointFile> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') {
        const file = new CheckpointFile(path, { stream: streamArn, shards: {} })
        await file.save()
        return file
      }
      throw new ConfigurationError(`checkpointFile: cannot read ${path}: ${messageOf(error)}`, {
        cause: error,
      })
    }
    let document: CheckpointDocument
    try {
      document = JSON.parse(text) as CheckpointDocument
    } catch (error) {
      throw new ConfigurationError(
        `checkpointFile: ${path} is not a checkpoint file (not JSON: ${messageOf(error)}); remove it to start again from the starting position`,
        { cause: error },
      )
    }
    if (
      typeof document !== 'object' ||
      document === null ||
      typeof document.stream !== 'string' ||
      typeof document.shards !== 'object' ||
      document.shards === null
    ) {
      throw new ConfigurationError(
        `checkpointFile: ${path} is not a checkpoint file (no stream and shards); remove it to start again from the starting position`,
      )
    }
    if (document.stream !== streamArn) {
      throw new ConfigurationError(
        `checkpointFile: ${path} holds the checkpoints of ${document.stream}, not of ${streamArn}; use another file for this stream`,
      )
    }
    return new CheckpointFile(path, document)
  }

  /** How many shards have a checkpoint or a start time kept. */
  get shardCount(): number {
    return Object.keys(this.document.shards).length
  }

  shard(shardId: string): ShardCheckpoint | undefined {
    return this.document.shards[shardId]
  }

  /** Keeps a shard's checkpoint and writes the file; resolves once a write holding it is done. */
  set(shardId: string, checkpoint: ShardCheckpoint): Promise<void> {
    this.document.shards[shardId] = checkpoint
    return this.save()
  }

  /** One write at a time; changes made during a write go in one more write after it. */
  private save(): Promise<void> {
    if (this.writing !== undefined) {
      this.again = true
      return this.writing
    }
    this.writing = (async () => {
      try {
        do {
          this.again = false
          const temporary = `${this.path}.${process.pid}.tmp`
          await writeFile(temporary, `${JSON.stringify(this.document, null, 2)}\n`)
          await rename(temporary, this.path)
        } while (this.again)
      } finally {
        this.writing = undefined
      }
    })()
    return this.writing
  }
}
