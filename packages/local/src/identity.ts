/**
 * Who the function is, for the event and the on-failure document: on AWS, the account of the
 * caller's credentials (STS GetCallerIdentity) and the function's ARN in it, or the ARN given;
 * against a local endpoint, the placeholders of a local run (account 000000000000).
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'
import { ConfigurationError, messageOf } from '@shardwise/core'

/** What a run knows of the function beyond its name: its ARN and account, on AWS. */
export interface FunctionAccount {
  functionName: string
  /** `undefined`: the local placeholder ARN. */
  arn?: string
  /** `undefined`: 000000000000. */
  account?: string
}

const FUNCTION_ARN =
  /^arn:(aws[a-z-]*):lambda:([a-z0-9-]+):(\d{12}):function:([A-Za-z0-9_-]{1,64})(:[A-Za-z0-9_$-]+)?$/

export interface IdentityOptions {
  functionName: string | undefined
  /** Given: the function's ARN, its account and name taken from it. */
  functionArn: string | undefined
  region: string
  /** Ask STS for the caller's account: the run reads from AWS, or `sts` was given. */
  sts: STSClient | undefined
}

export async function functionAccount(options: IdentityOptions): Promise<FunctionAccount> {
  const { functionArn, region } = options
  if (functionArn !== undefined) {
    const match = FUNCTION_ARN.exec(functionArn)
    if (match === null) {
      throw new ConfigurationError(
        `functionArn: ${functionArn} is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)`,
      )
    }
    return {
      functionName: options.functionName ?? (match[4] as string),
      arn: functionArn,
      account: match[3] as string,
    }
  }
  const functionName = options.functionName ?? 'local-function'
  if (options.sts === undefined) return { functionName }
  let account: string | undefined
  try {
    account = (await options.sts.send(new GetCallerIdentityCommand({}))).Account
  } catch (error) {
    throw new ConfigurationError(
      `STS GetCallerIdentity failed, so the events cannot carry your account: ${messageOf(error)}. ` +
        'Check the AWS credentials (AWS_PROFILE, aws sso login), or give --function-arn',
      { cause: error },
    )
  }
  if (account === undefined) return { functionName }
  const partition = region.startsWith('cn-')
    ? 'aws-cn'
    : region.startsWith('us-gov-')
      ? 'aws-us-gov'
      : 'aws'
  return {
    functionName,
    arn: `arn:${partition}:lambda:${region}:${account}:function:${functionName}`,
    account,
  }
}

/** The STS client of a run that reads from AWS. */
export function stsClient(region: string): STSClient {
  return new STSClient({ region, maxAttempts: 3 })
}
