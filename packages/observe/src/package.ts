export const pkg = '@shardwise/observe'
