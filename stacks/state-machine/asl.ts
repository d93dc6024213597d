// Typed Amazon States Language (JSONPath): states whose `Next`, `Default`, Choice and Catch targets can
// only name a state declared in the same States object (a compile error otherwise, and a throw at synth
// for anything that slips past the types), and whose AWS calls carry the IAM statements they need.
//
// A Task's `Resource`, a Distributed Map's `ItemReader.Resource`, `ResultWriter.Resource` and its
// processor's configuration are `Granted` values: the ASL text plus the policy statements the call needs
// (the way aws-cdk's EcsRunTask returns its `_createPolicyStatements`). They can only be made by the
// integration modules (run-task.ts, integrations.ts), so a state that calls AWS cannot be written without
// its permission. Rendering a flow yields the ASL JSON and every statement its states brought.
import type { DataAwsIamPolicyDocumentStatement } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** One statement of the state machine role's policy (the provider's policy-document statement). */
export type PolicyStatement = DataAwsIamPolicyDocumentStatement & { readonly sid: string; readonly actions: string[]; readonly resources: string[] };

/**
 * How a state uses AWS: a Task's Resource, a Distributed Map's reader or writer, or its children.
 * The role's policy lists statements in the order of POLICY_ORDER (iam.ts).
 */
export type IntegrationUse = `task:${string}` | `itemReader:${string}` | `resultWriter:${string}` | 'distributedMap';

/** A statement and the integration use that needs it. */
export interface Grant {
  readonly use: IntegrationUse;
  readonly statement: PolicyStatement;
}

/** ASL text that calls AWS, with the statements that call needs. Made by the integration modules only. */
export class Granted<T extends Json = Json> {
  readonly grants: readonly Grant[];
  constructor(
    readonly use: IntegrationUse,
    readonly json: T,
    statements: PolicyStatement[],
  ) {
    if (statements.length === 0) throw new Error(`state machine: ${use} brings no IAM statements (every AWS call needs a permission)`);
    this.grants = statements.map((statement) => ({ use, statement }));
  }
}

type Transition<N> = { readonly Next: N; readonly End?: never } | { readonly End: true; readonly Next?: never };

export interface Catcher<N> {
  readonly ErrorEquals: string[];
  readonly ResultPath?: string | null;
  readonly Next: N;
}

/** A Choice rule: any condition (JSON) and where it leads. */
export type ChoiceRule<N> = JsonObject & { readonly Next: N };

interface Common {
  readonly Comment?: string;
}

export type PassState<N> = Common & {
  readonly Type: 'Pass';
  readonly Parameters?: JsonObject;
  readonly Result?: Json;
  readonly ResultPath?: string | null;
} & Transition<N>;

export type TaskState<N> = Common & {
  readonly Type: 'Task';
  readonly Resource: Granted<string>;
  readonly Parameters?: JsonObject;
  readonly ResultSelector?: JsonObject;
  readonly ResultPath?: string | null;
  readonly TimeoutSeconds?: number;
  readonly Retry?: JsonObject[];
  readonly Catch?: Catcher<N>[];
} & Transition<N>;

export type ChoiceState<N> = Common & {
  readonly Type: 'Choice';
  readonly Choices: ChoiceRule<N>[];
  readonly Default?: N;
};

export type WaitState<N> = Common & { readonly Type: 'Wait'; readonly Seconds?: number; readonly SecondsPath?: string } & Transition<N>;

export type FailState = Common & { readonly Type: 'Fail'; readonly Error?: string; readonly Cause?: string; readonly CausePath?: string };

export type SucceedState = Common & { readonly Type: 'Succeed' };

export interface ItemReader {
  readonly Resource: Granted<string>;
  readonly ReaderConfig?: JsonObject;
  readonly Parameters: JsonObject;
}

export interface ResultWriter {
  readonly Resource: Granted<string>;
  readonly Parameters: JsonObject;
}

export type MapState<N> = Common & {
  readonly Type: 'Map';
  readonly ItemsPath?: string;
  readonly ItemReader?: ItemReader;
  readonly ItemSelector?: JsonObject;
  readonly ItemBatcher?: JsonObject;
  readonly MaxConcurrency?: number;
  readonly ToleratedFailurePercentage?: number;
  readonly ItemProcessor: Processor;
  readonly ResultWriter?: ResultWriter;
  readonly ResultSelector?: JsonObject;
  readonly ResultPath?: string | null;
  readonly Label?: string;
  readonly Retry?: JsonObject[];
  readonly Catch?: Catcher<N>[];
} & Transition<N>;

export type State<N> = PassState<N> | TaskState<N> | ChoiceState<N> | WaitState<N> | FailState | SucceedState | MapState<N>;

/** A rendered States object (StartAt + States) and the grants of every state in it, nested ones included. */
export class Flow {
  constructor(
    readonly json: { StartAt: string; States: Record<string, JsonObject> },
    readonly grants: readonly Grant[],
  ) {}
}

/** A Map's ItemProcessor: a flow and its mode (a Distributed Map's mode brings the child-execution grants). */
export class Processor {
  constructor(
    readonly config: JsonObject | Granted<JsonObject>,
    readonly flow: Flow,
  ) {}
}

export const inlineProcessor = (flow: Flow) => new Processor({ Mode: 'INLINE' }, flow);

/**
 * Part of a States object, typed so literal state names and `Type`s are kept: a module builds its
 * states with this and the flow that holds them checks every target.
 */
export function states<const T extends Record<string, State<string>>>(part: T): T {
  return part;
}

/** Names widened to `string` would let any target through: such a States object does not compile. */
type LiteralNames<N extends string> = string extends N ? { 'state names must be string literals (a state value widened the States object)': never } : unknown;

/** The targets a state names (Next, Default, each Choice rule's and each Catcher's Next). */
function targets(state: State<string>): string[] {
  const out: string[] = [];
  if ('Next' in state && state.Next !== undefined) out.push(state.Next);
  if (state.Type === 'Choice') {
    out.push(...state.Choices.map((c) => c.Next));
    if (state.Default !== undefined) out.push(state.Default);
  }
  if ((state.Type === 'Task' || state.Type === 'Map') && state.Catch) out.push(...state.Catch.map((c) => c.Next));
  return out;
}

/**
 * Renders a States object. `Next` and the other targets can only name a key of `states` (N is inferred
 * from the keys alone, and must be literal names): an undeclared target is a compile error; the same check runs again here, with
 * the unreachable-state check ASL also makes, so a cast cannot slip one through. `rename` gives every
 * state its name in the machine (state names are global across nested flows in ASL).
 */
export function flow<N extends string>(
  startAt: NoInfer<N>,
  declared: { [K in N]: State<NoInfer<N>> } & LiteralNames<N>,
  rename: (name: NoInfer<N>) => string = (n) => n,
): Flow {
  const all = declared as Record<string, State<string>>;
  const where = (name: string) => `state machine: state "${name}"`;
  if (!(startAt in all)) throw new Error(`state machine: StartAt "${startAt}" is not a declared state`);
  for (const [name, state] of Object.entries(all)) {
    for (const target of targets(state)) if (!(target in all)) throw new Error(`${where(name)} names "${target}", which is not a declared state of its flow`);
  }
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    targets(all[name]).forEach(visit);
  };
  visit(startAt);
  const unreachable = Object.keys(all).filter((n) => !seen.has(n));
  if (unreachable.length > 0) throw new Error(`state machine: states ${unreachable.map((n) => `"${n}"`).join(', ')} cannot be reached from "${startAt}"`);

  const grants: Grant[] = [];
  const name = (n: string) => rename(n as N);
  // Copies a value in key order, replacing each Granted with its ASL and each processor with its flow.
  const render = (value: unknown): Json => {
    if (value instanceof Granted) {
      grants.push(...value.grants);
      return value.json;
    }
    if (value instanceof Processor) {
      grants.push(...value.flow.grants);
      return { ProcessorConfig: render(value.config), ...value.flow.json };
    }
    if (Array.isArray(value)) return value.map(render);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, render(v)]),
      );
    }
    return value as Json;
  };
  const retarget = (state: JsonObject): JsonObject => {
    const out: JsonObject = { ...state };
    if (typeof out.Next === 'string') out.Next = name(out.Next);
    if (typeof out.Default === 'string') out.Default = name(out.Default);
    for (const list of ['Choices', 'Catch'] as const) {
      if (Array.isArray(out[list])) out[list] = (out[list] as JsonObject[]).map((r) => ({ ...r, Next: name(String(r.Next)) }));
    }
    return out;
  };
  const rendered = Object.fromEntries(Object.entries(all).map(([n, s]) => [name(n), retarget(render(s) as JsonObject)]));
  return new Flow({ StartAt: name(startAt), States: rendered }, grants);
}

/** Every Task state of a definition, nested ones included: name -> state. */
export function taskStates(definition: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const walk = (states: Record<string, Record<string, unknown>>) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') out[name] = state;
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
      if (processor) walk(processor.States);
      for (const branch of (state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, Record<string, unknown>>);
  return out;
}

/** A presence-guarded string test (a type test on a missing path is a runtime error; And short-circuits). */
export const isString = (variable: string): Json[] => [
  { Variable: variable, IsPresent: true },
  { Variable: variable, IsString: true },
];

/** Text for a States.Format literal, which treats ' { } \ as special. */
export const formatLiteral = (text: string) => text.replace(/[\\'{}]/g, '\\$&');
