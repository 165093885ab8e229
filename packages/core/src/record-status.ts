/**
 * Where a record stands in this invocation. Each status is also a constant of its own, which the
 * middlewares compare with: a bundler writes such a constant as its number wherever it is used,
 * where `RecordStatus.Failed` stays a property read. This module imports nothing, or a bundler
 * could not (a module with side effects before the constants keeps them as variables).
 */

/** Not handled (yet): decoded and waiting, or never started because an earlier record failed. */
export const PENDING = 0
/** The record handler finished without error. */
export const SUCCEEDED = 1
/** A step failed it: decoding, parsing, validation or the record handler. */
export const FAILED = 2
/** It failed, and a poison sink acknowledged it, so the shard may move past it. */
export const DIVERTED = 3

export const RecordStatus = {
  Pending: PENDING,
  Succeeded: SUCCEEDED,
  Failed: FAILED,
  Diverted: DIVERTED,
} as const
export type RecordStatus = (typeof RecordStatus)[keyof typeof RecordStatus]
