/**
 * The Kinesis event source mappings a template deploys, read without deploying it: a
 * CloudFormation template in JSON or YAML (what `cdk synth` writes, or one written by hand), a
 * SAM `template.yaml` (`AWS::Serverless::Function` events of `Type: Kinesis`, with its
 * `Globals`), or a Serverless Framework `serverless.yml` (`functions.<name>.events[].stream`).
 * Each mapping comes out in the terms of Lambda's `CreateEventSourceMapping`, with where each
 * setting was read, so `shardwise check-mapping` can judge it and `shardwise run --template`
 * can run it.
 */
import { readFileSync } from 'node:fs'
import { type CollectionTag, parse as parseYaml, type ScalarTag } from 'yaml'
import type { FilterCriteria } from './filter.js'
import type { MappingSettings, StartingPosition } from './settings.js'

/** A template that cannot be read, or that holds no mapping for the function asked for. */
export class TemplateError extends Error {
  override name = 'TemplateError'
}

/** Which tool wrote the configuration: the fixes are said in its own words. */
export type MappingOrigin = 'cloudformation' | 'sam' | 'cdk' | 'serverless' | 'aws'

/** The settings that `check-mapping` judges and `run --template` runs, and their sources. */
export type SettingName = keyof MappingSettings | 'timeoutSeconds' | 'onFailureDestination'

/** One event source mapping, as deployed (AWS) or as a template would deploy it. */
export interface DeployedMapping {
  origin: MappingOrigin
  /** Where it was read: `template.yaml Resources.Orders.Properties.Events.Stream`, or its UUID. */
  where: string
  /** The function: its logical id or key in a template, its name in AWS. */
  function: string
  /** The stream or stream consumer, as written: an ARN or the template's reference to it. */
  eventSource: string
  /** The stream's name, when the template or the ARN says it. */
  streamName?: string
  enabled: boolean
  /** The settings the configuration sets; those it leaves out take Lambda's defaults. */
  settings: MappingSettings
  /** The on-failure destination (SQS queue, SNS topic, S3 bucket), as written; none if absent. */
  onFailureDestination?: string
  /** The function's timeout in seconds; undefined when the template does not hold the function. */
  timeoutSeconds?: number
  /** Where each setting was read (`Resources.X.Properties.BatchSize`, `Globals.Function.Timeout`). */
  sources: Partial<Record<SettingName, string>>
  /** Settings only known at deploy time (a parameter without a default, a condition), and why. */
  unresolved: Partial<Record<SettingName, string>>
}

export interface ReadTemplateOptions {
  /** Only this function's mappings: its logical id, its `FunctionName`, or its CDK path. */
  function?: string
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

/** Reads a template file and the Kinesis mappings it deploys. */
export function readTemplate(path: string, options: ReadTemplateOptions = {}): DeployedMapping[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new TemplateError(`cannot read the template ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  return templateMappings(parseTemplate(text, path), path, options)
}

/** JSON, or YAML with CloudFormation's short forms (`!Ref`, `!GetAtt`, `!Sub`, ...). */
export function parseTemplate(text: string, file: string): JsonObject {
  let parsed: unknown
  try {
    parsed = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text, YAML_OPTIONS)
  } catch (error) {
    throw new TemplateError(`${file} is not valid JSON or YAML: ${(error as Error).message}`, {
      cause: error,
    })
  }
  if (!isObject(parsed)) {
    throw new TemplateError(`${file} holds ${kindOf(parsed)}, not a template (an object)`)
  }
  return parsed
}

const INTRINSICS = [
  'Ref',
  'Condition',
  'Fn::And',
  'Fn::Base64',
  'Fn::Cidr',
  'Fn::Equals',
  'Fn::FindInMap',
  'Fn::GetAtt',
  'Fn::GetAZs',
  'Fn::If',
  'Fn::ImportValue',
  'Fn::Join',
  'Fn::Length',
  'Fn::Not',
  'Fn::Or',
  'Fn::Select',
  'Fn::Split',
  'Fn::Sub',
  'Fn::ToJsonString',
  'Fn::Transform',
]

/** `!GetAtt Queue.Arn` is `{ "Fn::GetAtt": ["Queue", "Arn"] }`; every other tag keeps its value. */
const YAML_OPTIONS = {
  customTags: INTRINSICS.flatMap((key): Array<ScalarTag | CollectionTag> => {
    const tag = `!${key.replace(/^Fn::/, '')}`
    return [
      {
        tag,
        resolve: (value: string) => ({
          [key]: key === 'Fn::GetAtt' ? value.split(/\.(.*)/s, 2) : value,
        }),
      },
      { tag, collection: 'seq', resolve: (seq) => ({ [key]: seq.toJSON() }) },
      { tag, collection: 'map', resolve: (map) => ({ [key]: map.toJSON() }) },
    ]
  }),
}

/** The Kinesis mappings of a parsed template, of one function or of all. */
export function templateMappings(
  template: JsonObject,
  file: string,
  options: ReadTemplateOptions = {},
): DeployedMapping[] {
  const reader = new TemplateReader(template, file)
  const found = reader.mappings()
  const wanted = options.function
  if (wanted === undefined) {
    if (found.length === 0) {
      throw new TemplateError(`${file} deploys no Kinesis event source mapping`)
    }
    return found
  }
  const functions = reader.functionIds()
  const id = functions.find((f) => reader.functionMatches(f, wanted))
  const mine = found.filter((m) => m.function === (id ?? wanted))
  if (mine.length > 0) return mine
  if (id === undefined) {
    const list = functions.length > 0 ? functions.join(', ') : 'none'
    throw new TemplateError(`${file} has no function ${wanted} (functions: ${list})`)
  }
  throw new TemplateError(`function ${id} has no Kinesis event source mapping in ${file}`)
}

/** Lambda's defaults, and the Serverless Framework's where it sets its own. */
const SERVERLESS_DEFAULTS: Partial<Record<SettingName, Json>> = {
  batchSize: 10,
  startingPosition: 'TRIM_HORIZON',
}
const SERVERLESS_DEFAULT_TIMEOUT = 6
const LAMBDA_DEFAULT_TIMEOUT = 3

class TemplateReader {
  private readonly resources: JsonObject
  private readonly parameters: JsonObject
  private readonly serverless: boolean
  private readonly origin: MappingOrigin

  constructor(
    private readonly template: JsonObject,
    private readonly file: string,
  ) {
    this.serverless = isObject(template.functions) && !isObject(template.Resources)
    const resources = this.serverless
      ? objectAt(objectAt(template, 'resources'), 'Resources')
      : template.Resources
    if (!isObject(resources) && !this.serverless) {
      throw new TemplateError(
        `${file} is neither a CloudFormation template (no Resources) nor a Serverless Framework configuration (no functions)`,
      )
    }
    this.resources = isObject(resources) ? resources : {}
    this.parameters = objectAt(template, 'Parameters')
    this.origin = this.serverless
      ? 'serverless'
      : String(template.Transform ?? '').includes('AWS::Serverless')
        ? 'sam'
        : this.isCdk()
          ? 'cdk'
          : 'cloudformation'
  }

  mappings(): DeployedMapping[] {
    const out: DeployedMapping[] = []
    for (const [id, resource] of Object.entries(this.resources)) {
      if (!isObject(resource)) continue
      const props = objectAt(resource, 'Properties')
      if (resource.Type === 'AWS::Lambda::EventSourceMapping') {
        const mapping = this.mapping(`Resources.${id}`, props, props.EventSourceArn)
        if (mapping !== undefined) out.push(mapping)
      } else if (resource.Type === 'AWS::Serverless::Function') {
        for (const [name, event] of Object.entries(objectAt(props, 'Events'))) {
          if (!isObject(event) || event.Type !== 'Kinesis') continue
          const at = `Resources.${id}.Properties.Events.${name}`
          const mapping = this.mapping(at, objectAt(event, 'Properties'), undefined, id)
          if (mapping !== undefined) out.push(mapping)
        }
      }
    }
    if (this.serverless) out.push(...this.serverlessMappings())
    return out
  }

  /** The logical ids (keys, in serverless.yml) of the functions the template holds. */
  functionIds(): string[] {
    if (this.serverless) return Object.keys(objectAt(this.template, 'functions'))
    return Object.entries(this.resources)
      .filter(([, r]) => isObject(r) && FUNCTION_TYPES.includes(String(r.Type)))
      .map(([id]) => id)
  }

  functionMatches(id: string, wanted: string): boolean {
    if (id === wanted) return true
    const fn = this.serverless
      ? objectAt(objectAt(this.template, 'functions'), id)
      : objectAt(objectAt(this.resources, id), 'Properties')
    if ((fn.FunctionName ?? fn.name) === wanted) return true
    const path = objectAt(objectAt(this.resources, id), 'Metadata')['aws:cdk:path']
    if (typeof path !== 'string') return false
    const construct = path.replace(/\/Resource$/, '')
    return construct === wanted || construct.endsWith(`/${wanted}`)
  }

  /**
   * \`cdk synth\` adds CDKMetadata and each resource's path; an App synthesized in code adds
   * neither, but its default synthesizer still adds the BootstrapVersion parameter.
   */
  private isCdk(): boolean {
    return (
      isObject(this.resources.CDKMetadata) ||
      isObject(this.parameters.BootstrapVersion) ||
      Object.values(this.resources).some(
        (r) => typeof objectAt(r, 'Metadata')['aws:cdk:path'] === 'string',
      )
    )
  }

  /**
   * A mapping of CloudFormation (`AWS::Lambda::EventSourceMapping`) or SAM (a `Kinesis` event,
   * whose function is the resource it sits in): the same property names.
   */
  private mapping(
    at: string,
    props: JsonObject,
    eventSourceArn: Json | undefined,
    functionId?: string,
  ): DeployedMapping | undefined {
    const source = eventSourceArn ?? props.Stream ?? null
    if (!this.isKinesis(source, props)) return undefined
    const fn = functionId ?? this.functionOf(props.FunctionName ?? null)
    const mapping = this.blank(at, fn, source)
    const p = (name: string) => `${at}.Properties.${name}`
    const read = new SettingReader(this, mapping)
    for (const setting of SETTINGS)
      read.setting(setting, props[setting.cloudformation], p(setting.cloudformation))
    read.filters(props.FilterCriteria, p('FilterCriteria'))
    const destination = objectAt(objectAt(props, 'DestinationConfig'), 'OnFailure').Destination
    read.destination(destination, p('DestinationConfig.OnFailure.Destination'))
    const enabled = this.resolve(props.Enabled ?? true)
    mapping.enabled = enabled.value !== false && enabled.value !== 'false'
    this.timeout(mapping, fn)
    return mapping
  }

  /** `functions.<name>.events[].stream`, as the Serverless Framework compiles it. */
  private serverlessMappings(): DeployedMapping[] {
    const out: DeployedMapping[] = []
    const provider = objectAt(this.template, 'provider')
    for (const [name, fn] of Object.entries(objectAt(this.template, 'functions'))) {
      if (!isObject(fn) || !Array.isArray(fn.events)) continue
      fn.events.forEach((event, i) => {
        const stream = isObject(event) ? event.stream : undefined
        if (stream === undefined || stream === null) return
        const props = isObject(stream) ? stream : { arn: stream }
        const type = props.type
        if (type !== undefined && type !== 'kinesis') return
        if (type === undefined && !this.isKinesis(props.arn ?? null, {})) return
        const at = `functions.${name}.events[${i}].stream`
        const mapping = this.blank(at, name, props.arn ?? null)
        const p = (key: string) => `${at}.${key}`
        const read = new SettingReader(this, mapping)
        for (const setting of SETTINGS) {
          const key = setting.serverless
          read.setting(setting, props[key], p(key), SERVERLESS_DEFAULTS[setting.key])
        }
        if (Array.isArray(props.filterPatterns)) {
          read.filters(
            { Filters: props.filterPatterns.map((pattern) => ({ Pattern: pattern })) },
            p('filterPatterns'),
          )
        }
        const onFailure = objectAt(props, 'destinations').onFailure
        const destination = isObject(onFailure) ? onFailure.arn : onFailure
        read.destination(destination, p('destinations.onFailure'))
        mapping.enabled = props.enabled !== false
        const timeout = fn.timeout ?? provider.timeout
        if (timeout !== undefined) {
          const at = fn.timeout !== undefined ? `functions.${name}.timeout` : 'provider.timeout'
          read.number('timeoutSeconds', timeout, at)
        } else {
          mapping.timeoutSeconds = SERVERLESS_DEFAULT_TIMEOUT
          mapping.sources.timeoutSeconds = "the Serverless Framework's default"
        }
        out.push(mapping)
      })
    }
    return out
  }

  private blank(at: string, fn: string, source: Json): DeployedMapping {
    const eventSource = shown(source)
    const mapping: DeployedMapping = {
      origin: this.origin,
      where: `${this.file} ${at}`,
      function: fn,
      eventSource,
      enabled: true,
      settings: {},
      sources: {},
      unresolved: {},
    }
    const name = this.streamName(source)
    if (name !== undefined) mapping.streamName = name
    return mapping
  }

  /** The function's timeout: its own `Timeout`, SAM's `Globals.Function.Timeout`, or 3 s. */
  private timeout(mapping: DeployedMapping, id: string): void {
    const resource = objectAt(this.resources, id)
    if (!FUNCTION_TYPES.includes(String(resource.Type))) {
      mapping.unresolved.timeoutSeconds = `${id} is not a function of ${this.file}, so its timeout is unknown`
      return
    }
    const read = new SettingReader(this, mapping)
    const own = objectAt(resource, 'Properties').Timeout
    const global = objectAt(objectAt(this.template, 'Globals'), 'Function').Timeout
    if (own !== undefined) read.number('timeoutSeconds', own, `Resources.${id}.Properties.Timeout`)
    else if (resource.Type === 'AWS::Serverless::Function' && global !== undefined) {
      read.number('timeoutSeconds', global, 'Globals.Function.Timeout')
    } else {
      mapping.timeoutSeconds = LAMBDA_DEFAULT_TIMEOUT
      mapping.sources.timeoutSeconds = "Lambda's default"
    }
  }

  /** `!Ref Fn`, `!GetAtt Fn.Arn`, a logical id, a `FunctionName`, or a name the template lacks. */
  private functionOf(value: Json): string {
    const id = referencedId(value)
    if (id !== undefined) return id
    const name = this.resolve(value).value
    if (typeof name !== 'string') return shown(value)
    const bare = name.replace(/^arn:[^:]+:lambda:[^:]*:[^:]*:function:/, '').replace(/:.*$/, '')
    const ids = this.functionIds()
    return ids.find((f) => this.functionMatches(f, bare)) ?? bare
  }

  /**
   * A Kinesis stream or consumer: a reference to one in the template, or an ARN. A source of
   * unknown kind (a parameter without a default) counts when the mapping has a starting
   * position, which only streams take; an SQS queue or a DynamoDB table does not count.
   */
  private isKinesis(source: Json, props: JsonObject): boolean {
    const id = referencedId(source)
    if (id !== undefined && isObject(this.resources[id])) {
      return String((this.resources[id] as JsonObject).Type).startsWith('AWS::Kinesis::')
    }
    const arn = this.resolve(source).value
    if (typeof arn === 'string' && arn.startsWith('arn:')) return arn.split(':')[2] === 'kinesis'
    const text = JSON.stringify(source)
    if (text.includes(':kinesis:')) return true
    if (/:(dynamodb|sqs|kafka|mq):/.test(text)) return false
    return props.StartingPosition !== undefined
  }

  /** The stream's name: a `Name` of the stream resource, or the end of an ARN. */
  private streamName(source: Json): string | undefined {
    const id = referencedId(source)
    if (id !== undefined) {
      const resource = objectAt(this.resources, id)
      const props = objectAt(resource, 'Properties')
      if (resource.Type === 'AWS::Kinesis::StreamConsumer')
        return this.streamName(props.StreamARN ?? null)
      const name = this.resolve(props.Name ?? null).value
      return typeof name === 'string' ? name : undefined
    }
    const arn = this.resolve(source).value
    if (typeof arn !== 'string') return undefined
    return /^arn:[^:]+:kinesis:[^:]*:[^:]*:stream\/([^/]+)/.exec(arn)?.[1]
  }

  /**
   * A property's value: itself, or a `Ref` to a parameter with a default. Anything else
   * (`Fn::If`, a parameter without a default, an import) is only known at deploy time.
   */
  resolve(value: Json | undefined): { value: Json | undefined; from?: string; unknown?: string } {
    if (!isObject(value)) return { value }
    const keys = Object.keys(value)
    if (keys.length === 1 && keys[0] === 'Ref' && typeof value.Ref === 'string') {
      const parameter = objectAt(this.parameters, value.Ref)
      if (parameter.Default !== undefined) {
        return { value: parameter.Default, from: `the default of parameter ${value.Ref}` }
      }
      return { value: undefined, unknown: `${shown(value)}, a parameter without a default` }
    }
    if (keys.length === 1 && INTRINSICS.includes(keys[0] as string)) {
      return { value: undefined, unknown: `${shown(value)}, only known at deploy time` }
    }
    return { value }
  }
}

const FUNCTION_TYPES = ['AWS::Lambda::Function', 'AWS::Serverless::Function']

/** A mapping setting: its kind, and its name in CloudFormation (and SAM) and in serverless.yml. */
interface Setting {
  key: NumericSetting | 'startingPosition' | 'functionResponseTypes' | 'bisectBatchOnFunctionError'
  kind: 'number' | 'boolean' | 'text' | 'types'
  cloudformation: string
  serverless: string
}

const SETTINGS: Setting[] = [
  { key: 'batchSize', kind: 'number', cloudformation: 'BatchSize', serverless: 'batchSize' },
  {
    key: 'maximumBatchingWindowInSeconds',
    kind: 'number',
    cloudformation: 'MaximumBatchingWindowInSeconds',
    serverless: 'batchWindow',
  },
  {
    key: 'startingPosition',
    kind: 'text',
    cloudformation: 'StartingPosition',
    serverless: 'startingPosition',
  },
  {
    key: 'startingPositionTimestamp',
    kind: 'number',
    cloudformation: 'StartingPositionTimestamp',
    serverless: 'startingPositionTimestamp',
  },
  {
    key: 'functionResponseTypes',
    kind: 'types',
    cloudformation: 'FunctionResponseTypes',
    serverless: 'functionResponseType',
  },
  {
    key: 'bisectBatchOnFunctionError',
    kind: 'boolean',
    cloudformation: 'BisectBatchOnFunctionError',
    serverless: 'bisectBatchOnFunctionError',
  },
  {
    key: 'maximumRetryAttempts',
    kind: 'number',
    cloudformation: 'MaximumRetryAttempts',
    serverless: 'maximumRetryAttempts',
  },
  {
    key: 'maximumRecordAgeInSeconds',
    kind: 'number',
    cloudformation: 'MaximumRecordAgeInSeconds',
    serverless: 'maximumRecordAgeInSeconds',
  },
  {
    key: 'parallelizationFactor',
    kind: 'number',
    cloudformation: 'ParallelizationFactor',
    serverless: 'parallelizationFactor',
  },
  {
    key: 'tumblingWindowInSeconds',
    kind: 'number',
    cloudformation: 'TumblingWindowInSeconds',
    serverless: 'tumblingWindowInSeconds',
  },
]

/** Reads settings into one mapping: converts them, notes their source or why they are unknown. */
class SettingReader {
  constructor(
    private readonly reader: TemplateReader,
    private readonly mapping: DeployedMapping,
  ) {}

  setting(setting: Setting, raw: Json | undefined, at: string, fallback?: Json): void {
    const { key } = setting
    if (setting.kind === 'number') this.number(key as NumericSetting, raw, at, fallback)
    else if (setting.kind === 'boolean') this.boolean(key as 'bisectBatchOnFunctionError', raw, at)
    else if (setting.kind === 'text') this.text(key as 'startingPosition', raw, at, fallback)
    else this.responseTypes(raw, at)
  }

  number(
    key: 'timeoutSeconds' | NumericSetting,
    raw: Json | undefined,
    at: string,
    fallback?: Json,
  ): void {
    const value = this.value(key, raw, at, fallback)
    if (value === undefined) return
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new TemplateError(`${this.mapping.where}: ${at} is ${shown(value)}, not a number`)
    }
    if (key === 'timeoutSeconds') this.mapping.timeoutSeconds = n
    else this.mapping.settings[key] = n
  }

  boolean(key: 'bisectBatchOnFunctionError', raw: Json | undefined, at: string): void {
    const value = this.value(key, raw, at)
    if (value === undefined) return
    if (value !== true && value !== false && value !== 'true' && value !== 'false') {
      throw new TemplateError(`${this.mapping.where}: ${at} is ${shown(value)}, not true or false`)
    }
    this.mapping.settings[key] = value === true || value === 'true'
  }

  text(key: 'startingPosition', raw: Json | undefined, at: string, fallback?: Json): void {
    const value = this.value(key, raw, at, fallback)
    if (value === undefined) return
    this.mapping.settings[key] = String(value) as StartingPosition
  }

  /** A list (CloudFormation) or one value (serverless.yml's `functionResponseType`). */
  responseTypes(raw: Json | undefined, at: string): void {
    const value = this.value('functionResponseTypes', raw, at)
    if (value === undefined) return
    const list = (Array.isArray(value) ? value : [value]).map((v) => this.reader.resolve(v).value)
    this.mapping.settings.functionResponseTypes = list.filter(
      (t): t is 'ReportBatchItemFailures' => t === 'ReportBatchItemFailures',
    )
  }

  filters(raw: Json | undefined, at: string): void {
    const value = this.value('filterCriteria', raw, at)
    if (!isObject(value)) return
    const filters = Array.isArray(value.Filters) ? value.Filters : []
    // CloudFormation takes each pattern as JSON text; serverless.yml as an object.
    const criteria: FilterCriteria = {
      Filters: filters.map((f) => {
        const pattern = isObject(f) ? f.Pattern : f
        return { Pattern: typeof pattern === 'string' ? pattern : JSON.stringify(pattern) }
      }),
    }
    this.mapping.settings.filterCriteria = criteria
  }

  destination(raw: Json | undefined, at: string): void {
    if (raw === undefined || raw === null || raw === '') return
    this.mapping.onFailureDestination = shown(raw)
    this.mapping.sources.onFailureDestination = at
  }

  /** The resolved value, its source noted; undefined when absent (or only known at deploy). */
  private value(
    key: SettingName,
    raw: Json | undefined,
    at: string,
    fallback?: Json,
  ): Json | undefined {
    if (raw === undefined || raw === null) {
      if (fallback === undefined) return undefined
      this.mapping.sources[key] = "the Serverless Framework's default"
      return fallback
    }
    const resolved = this.reader.resolve(raw)
    if (resolved.unknown !== undefined) {
      this.mapping.unresolved[key] = `${at} is ${resolved.unknown}`
      return undefined
    }
    this.mapping.sources[key] = resolved.from === undefined ? at : `${at} (${resolved.from})`
    return resolved.value ?? undefined
  }
}

type NumericSetting =
  | 'batchSize'
  | 'maximumBatchingWindowInSeconds'
  | 'startingPositionTimestamp'
  | 'maximumRetryAttempts'
  | 'maximumRecordAgeInSeconds'
  | 'parallelizationFactor'
  | 'tumblingWindowInSeconds'

/** The logical id a `Ref` or `Fn::GetAtt` points at. */
function referencedId(value: Json): string | undefined {
  if (!isObject(value)) return undefined
  if (typeof value.Ref === 'string') return value.Ref
  const att = value['Fn::GetAtt']
  if (Array.isArray(att) && typeof att[0] === 'string') return att[0]
  if (typeof att === 'string') return att.split('.')[0]
  return undefined
}

/** A value as a person reads it in a template: `!Ref Queue`, `!GetAtt Queue.Arn`, or its JSON. */
export function shown(value: Json | undefined): string {
  if (typeof value === 'string') return value
  if (isObject(value)) {
    if (typeof value.Ref === 'string') return `!Ref ${value.Ref}`
    const att = value['Fn::GetAtt']
    if (Array.isArray(att)) return `!GetAtt ${att.join('.')}`
  }
  return JSON.stringify(value) ?? 'nothing'
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function objectAt(value: Json | undefined, key: string): JsonObject {
  const inner = isObject(value) ? value[key] : undefined
  return isObject(inner) ? inner : {}
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  return `a ${typeof value}`
}
