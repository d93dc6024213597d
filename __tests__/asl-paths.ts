// Test support: proves, by walking a state machine definition (JSONPath), that every path a state
// selects is present whenever the state runs. A missing path in `.$` parameters, a ResultSelector,
// ItemsPath, SecondsPath, CausePath or a Choice comparison fails the execution with States.Runtime,
// which no Catch handles (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
//
// What is known about a state's input is a set of paths guaranteed present, propagated along every
// transition (Next, Default, Catch) and intersected where paths join, to a fixed point. Sources of
// knowledge: Parameters/ResultSelector/Result templates (their keys), ResultPath, a Choice branch's
// IsPresent tests (an And is evaluated left to right: a type test after an IsPresent is guarded), the
// documented shape of a service result (below), a Catch's error output (`Error` only: `Cause` is
// optional), a Distributed Map's batch ({"Items": [...]}, never empty) and a ResultWriter's result.
// Anything else (the caller's input, a service result not listed) guarantees nothing.

type Obj = Record<string, any>;
type Facts = Set<string>;

/** Fields a successful integration's result always has (from each API's documented response). */
const RESULT_FIELDS: Record<string, string[]> = {
  // GetObject returns the object's Body (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
  'arn:aws:states:::aws-sdk:s3:getObject': ['$.Body'],
  // DescribeExecution: executionArn and status are required response members
  // (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
  'arn:aws:states:::aws-sdk:sfn:describeExecution': ['$.Status', '$.ExecutionArn'],
  // GetItem returns no Item when there is none (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html).
  'arn:aws:states:::dynamodb:getItem': [],
};
/** A Distributed Map with a ResultWriter returns its map run and where the results are. */
const RESULT_WRITER_FIELDS = ['$.MapRunArn', '$.ResultWriterDetails', '$.ResultWriterDetails.Bucket', '$.ResultWriterDetails.Key'];
/** Context object fields of every execution (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html). */
const CONTEXT = [
  '$$.Execution.Id',
  '$$.Execution.Name',
  '$$.Execution.StartTime',
  '$$.Execution.Input',
  '$$.Execution.RoleArn',
  '$$.StateMachine.Id',
  '$$.StateMachine.Name',
  '$$.State.Name',
  '$$.State.EnteredTime',
];

/** `$.a[3].b` and `$.a[*].b` -> `$.a[].b`: array elements are known as one. */
function normalize(path: string): string {
  return path.replace(/\[(\d+|\*)\]/g, '[]');
}

function withAncestors(path: string): string[] {
  const out = [path];
  for (let i = path.length - 1; i > 1; i--) if (path[i] === '.' || path[i] === '[') out.push(path.slice(0, i));
  return out;
}

function add(facts: Facts, path: string): void {
  for (const p of withAncestors(normalize(path))) facts.add(p);
}

/** The `$`/`$$` paths an intrinsic function or a plain path reads (string literals skipped). */
export function pathsIn(expression: string): string[] {
  if (!expression.startsWith('States.')) return [expression];
  const out: string[] = [];
  let i = 0;
  while (i < expression.length) {
    const c = expression[i];
    if (c === "'") {
      for (i++; i < expression.length && expression[i] !== "'"; i++) if (expression[i] === '\\') i++;
      i++;
    } else if (c === '$' && !/[\w.]/.test(expression[i - 1] ?? '')) {
      let j = i;
      while (j < expression.length && !/[,)\s]/.test(expression[j])) j++;
      out.push(expression.slice(i, j));
      i = j;
    } else i++;
  }
  return out;
}

interface Scope {
  /** Context paths allowed here beyond CONTEXT (a Map's ItemSelector sees $$.Map.Item). */
  readonly context: string[];
}

class Analyzer {
  readonly problems: string[] = [];

  constructor(private readonly checking: boolean) {}

  private need(where: string, facts: Facts, path: string, scope: Scope): void {
    if (!this.checking) return;
    if (path.startsWith('$$')) {
      if (!CONTEXT.includes(path) && !scope.context.includes(path)) this.problems.push(`${where}: context path ${path} is not available here`);
    } else if (path !== '$' && !facts.has(normalize(path))) {
      this.problems.push(`${where}: ${path} is not guaranteed present`);
    }
  }

  /** Checks a payload template's paths and returns the facts of the object it builds. */
  template(where: string, template: Obj, facts: Facts, scope: Scope, root = '$'): Facts {
    const out: Facts = new Set();
    const visit = (value: any, at: string, path: string) => {
      if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${at}[${i}]`, `${path}[]`));
      else if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          if (k.endsWith('.$')) {
            const key = `${path}.${k.slice(0, -2)}`;
            for (const p of pathsIn(String(v))) this.need(`${where} ${at}.${k}`, facts, p, scope);
            add(out, key);
            // A plain path copies what is known below it.
            if (!String(v).startsWith('States.') && !String(v).startsWith('$$')) {
              const src = normalize(String(v));
              for (const f of facts) if (f.startsWith(`${src}.`) || f.startsWith(`${src}[`)) add(out, key + f.slice(src.length));
            }
          } else {
            add(out, `${path}.${k}`);
            visit(v, `${at}.${k}`, `${path}.${k}`);
          }
        }
      }
    };
    visit(template, '', root);
    return out;
  }

  static resultPath(input: Facts, result: Facts, resultPath: string | null | undefined): Facts {
    if (resultPath === null) return new Set(input);
    const target = normalize(resultPath ?? '$');
    if (target === '$') return new Set(result);
    const out: Facts = new Set([...input].filter((f) => f !== target && !f.startsWith(`${target}.`) && !f.startsWith(`${target}[`)));
    add(out, target);
    for (const r of result) if (r !== '$') add(out, target + r.slice(1));
    return out;
  }

  /** Checks a Choice rule evaluated with `facts`; returns the facts known when it matched. */
  rule(where: string, rule: Obj, facts: Facts): Facts {
    if (rule.And) {
      let known = facts;
      for (const r of rule.And) known = this.rule(where, r, known);
      return known;
    }
    if (rule.Or) {
      for (const r of rule.Or) this.rule(where, r, facts);
      return facts;
    }
    if (rule.Not) {
      this.rule(where, rule.Not, facts);
      return facts;
    }
    if (rule.IsPresent === true) {
      const out = new Set(facts);
      add(out, rule.Variable);
      return out;
    }
    if (rule.IsPresent === false) return facts;
    this.need(`${where} Variable`, facts, rule.Variable, { context: [] });
    return facts;
  }

  /** Runs a States block to a fixed point from `start`; with `checking`, reports every unguarded path. */
  states(block: Obj, start: Facts, scope: Scope, prefix = ''): void {
    const states = block.States as Record<string, Obj>;
    const input = new Map<string, Facts>();
    const queue: string[] = [];
    const flow = (name: string, facts: Facts) => {
      const prev = input.get(name);
      const next = prev ? new Set([...prev].filter((f) => facts.has(f))) : new Set(facts);
      if (!prev || next.size !== prev.size) {
        input.set(name, next);
        if (!queue.includes(name)) queue.push(name);
      }
    };
    flow(block.StartAt, start);
    const visit = (name: string, checking: boolean) => {
      const state = states[name];
      const facts = input.get(name)!;
      const where = `${prefix}${name}`;
      const self = new Analyzer(checking);
      if (state.InputPath !== undefined || state.OutputPath !== undefined) self.problems.push(`${where}: InputPath/OutputPath not modelled`);
      // Any other *Path field (TimeoutSecondsPath, MaxConcurrencyPath, ToleratedFailurePercentagePath,
      // ItemBatcher's MaxItemsPerBatchPath...) selects from the input too.
      const handled = new Set(['InputPath', 'OutputPath', 'ResultPath', 'ItemsPath', 'SecondsPath', 'TimestampPath', 'CausePath', 'ErrorPath']);
      for (const [field, value] of [...Object.entries(state), ...Object.entries(state.ItemBatcher ?? {})]) {
        if (field.endsWith('Path') && !handled.has(field) && typeof value === 'string') self.need(`${where} ${field}`, facts, value, scope);
      }
      const catches = (state.Catch ?? []) as Obj[];
      for (const c of catches) flow(c.Next, Analyzer.resultPath(facts, new Set(['$.Error']), c.ResultPath));
      switch (state.Type) {
        case 'Choice':
          for (const c of state.Choices as Obj[]) flow(c.Next, self.rule(where, c, facts));
          if (state.Default) flow(state.Default, facts);
          break;
        case 'Pass': {
          const result = state.Parameters
            ? self.template(where, state.Parameters, facts, scope)
            : state.Result !== undefined
              ? staticFacts(state.Result)
              : facts;
          if (state.Next) flow(state.Next, Analyzer.resultPath(facts, result, state.ResultPath));
          break;
        }
        case 'Task': {
          if (state.Parameters) self.template(where, state.Parameters, facts, scope);
          const raw: Facts = new Set(RESULT_FIELDS[state.Resource] ?? []);
          const result = state.ResultSelector ? self.template(`${where} ResultSelector`, state.ResultSelector, raw, { context: [] }) : raw;
          if (state.Next) flow(state.Next, Analyzer.resultPath(facts, result, state.ResultPath));
          break;
        }
        case 'Map': {
          if (state.ItemsPath) self.need(`${where} ItemsPath`, facts, state.ItemsPath, scope);
          if (state.ItemReader?.Parameters) self.template(`${where} ItemReader`, state.ItemReader.Parameters, facts, scope);
          const itemValue = state.ItemReader?.Resource === 'arn:aws:states:::s3:listObjectsV2' ? ['$$.Map.Item.Value.Key'] : [];
          const itemScope = { context: ['$$.Map.Item.Value', '$$.Map.Item.Index', ...itemValue] };
          const item = state.ItemSelector ? self.template(`${where} ItemSelector`, state.ItemSelector, facts, itemScope) : new Set<string>();
          let iteration: Facts = item;
          if (state.ItemBatcher) {
            iteration = new Set();
            add(iteration, '$.Items[]');
            for (const f of item) if (f !== '$') add(iteration, `$.Items[]${f.slice(1)}`);
            if (state.ItemBatcher.BatchInput)
              for (const f of self.template(`${where} BatchInput`, state.ItemBatcher.BatchInput, facts, scope))
                if (f !== '$') add(iteration, `$.BatchInput${f.slice(1)}`);
          }
          const processor = state.ItemProcessor ?? state.Iterator;
          // Each processor is analysed once, with what its items guarantee.
          if (checking) {
            const checker = new Analyzer(true);
            checker.states(processor, iteration, { context: [] }, `${where} > `);
            self.problems.push(...checker.problems);
          }
          const raw: Facts = new Set(state.ResultWriter ? RESULT_WRITER_FIELDS : []);
          const result = state.ResultSelector ? self.template(`${where} ResultSelector`, state.ResultSelector, raw, { context: [] }) : raw;
          if (state.Next) flow(state.Next, Analyzer.resultPath(facts, result, state.ResultPath));
          break;
        }
        case 'Wait':
          if (state.SecondsPath) self.need(`${where} SecondsPath`, facts, state.SecondsPath, scope);
          if (state.TimestampPath) self.need(`${where} TimestampPath`, facts, state.TimestampPath, scope);
          flow(state.Next, facts);
          break;
        case 'Fail':
          if (state.CausePath) self.need(`${where} CausePath`, facts, state.CausePath, scope);
          if (state.ErrorPath) self.need(`${where} ErrorPath`, facts, state.ErrorPath, scope);
          break;
        case 'Succeed':
          break;
        default:
          self.problems.push(`${where}: state type ${state.Type} not modelled`);
      }
      this.problems.push(...self.problems);
    };
    // To the fixed point without reporting (facts only shrink), then once more, reporting.
    while (queue.length > 0) visit(queue.shift()!, false);
    if (this.checking) for (const name of Object.keys(states)) if (input.has(name)) visit(name, true);
    if (this.checking) for (const name of Object.keys(states)) if (!input.has(name)) this.problems.push(`${prefix}${name}: unreachable`);
  }
}

function staticFacts(value: unknown, path = '$', out: Facts = new Set()): Facts {
  add(out, path);
  if (value && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) staticFacts(v, `${path}.${k}`, out);
  return out;
}

/** Every path selection of the definition that is neither guaranteed present nor guarded: [] when safe. */
export function unguardedPaths(definition: Obj): string[] {
  const analyzer = new Analyzer(true);
  analyzer.states(definition, new Set(), { context: [] });
  return [...new Set(analyzer.problems)];
}
