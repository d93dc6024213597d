// The service limits the local run enforces, as AWS documents them, and the hook that makes
// aws-local-stepfunctions check every state's input and output against them.
import type { Json } from './json';

/**
 * 262,144 bytes (UTF-8) for a task's, state's or execution's input or output: "tasks, state or execution
 * output, and input data when scheduling a task, entering a state, or starting an execution".
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 */
export const MAX_PAYLOAD_BYTES = 262_144;

/**
 * Error and cause of a failed execution or state: at most 256 and 32,768 characters
 * (ExecutionFailedEventDetails / TaskFailedEventDetails).
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html
 */
export const MAX_ERROR_CHARS = 256;
export const MAX_CAUSE_CHARS = 32_768;

/**
 * RunTask overrides: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
 * formatting characters of the override structure."
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html (overrides)
 */
export const MAX_ECS_OVERRIDE_CHARS = 8192;

/**
 * Execution names (and so map-run child names): 1-80 characters, none of whitespace, ? * < > { } [ ]
 * " # % \ ^ | ~ ` $ & , ; : / or control characters.
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (General quotas)
 */
export function checkExecutionName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (name.length < 1 || name.length > 80 || /[\s?*<>{}[\]"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/.test(name)) {
    throw Object.assign(new Error(`Invalid Name: '${name}' (1-80 characters, no whitespace, brackets, wildcards or special characters)`), {
      name: 'InvalidName',
    });
  }
}

/**
 * An error no Retry or Catch may match: `States.ALL` "can't catch the States.DataLimitExceeded terminal
 * error or Runtime error types".
 * https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * aws-local-stepfunctions reads these two flags (its own States.Runtime sets them the same way).
 */
export class TerminalError extends Error {
  readonly isRetryable = false;
  readonly isCatchable = false;
  constructor(name: 'States.DataLimitExceeded' | 'States.Runtime', message: string) {
    super(message);
    this.name = name;
  }
}

export const byteSize = (value: Json | undefined): number => Buffer.byteLength(JSON.stringify(value ?? null), 'utf8');

/** Throws the uncatchable States.DataLimitExceeded when `value` is over the payload quota. */
export function checkPayload(what: string, value: Json | undefined): void {
  const size = byteSize(value);
  if (size > MAX_PAYLOAD_BYTES) {
    throw new TerminalError('States.DataLimitExceeded', `${what} has ${size} bytes, over the ${MAX_PAYLOAD_BYTES}-byte payload quota`);
  }
}

/** Error and cause of a failure, held to their documented lengths (a longer one fails the execution). */
export function checkErrorAndCause(where: string, error: string, cause: string): void {
  if (error.length > MAX_ERROR_CHARS)
    throw new TerminalError('States.DataLimitExceeded', `${where}: error name of ${error.length} characters, over ${MAX_ERROR_CHARS}`);
  if (cause.length > MAX_CAUSE_CHARS)
    throw new TerminalError('States.DataLimitExceeded', `${where}: cause of ${cause.length} characters, over ${MAX_CAUSE_CHARS}`);
}

interface EventLogger {
  dispatchStateEnteredEvent(stateName: string, stateType: string, input: Json): void;
  dispatchStateExitedEvent(stateName: string, stateType: string, input: Json, output: Json): void;
  dispatchStateFailedEvent(stateName: string, stateType: string, input: Json, error: Error): void;
}

let installed = false;

/**
 * Makes every execution of aws-local-stepfunctions' StateMachine (map iterations included: they are
 * StateMachine runs too) check each state's input on entry and its output on exit. The library has no
 * option for this; its execution loop reports both through its event logger, inside the loop's
 * try-block, so a check there fails the execution like a failed state does, with no Catch consulted.
 * Checked against the pinned version (package.json): the tests of each limit fail if this stops working.
 */
export function installPayloadLimits(StateMachine: { prototype: object }): void {
  if (installed) return;
  const proto = StateMachine.prototype as {
    execute?: (input: Json, options: { eventLogger: EventLogger; runOptions?: { localUnchecked?: boolean } }, cleanup: () => void) => Promise<Json>;
  };
  const original = proto.execute;
  if (typeof original !== 'function')
    throw new Error('aws-local-stepfunctions: StateMachine.prototype.execute not found; the strict local runner needs the pinned version');
  proto.execute = function strictExecute(this: unknown, input, options, cleanup) {
    // The runner's own evaluations (an ItemSelector over every item read) are no state's payload.
    if (options.runOptions?.localUnchecked) return original.call(this, input, options, cleanup);
    const logger = options.eventLogger;
    const entered = logger.dispatchStateEnteredEvent.bind(logger);
    const exited = logger.dispatchStateExitedEvent.bind(logger);
    const failed = logger.dispatchStateFailedEvent.bind(logger);
    logger.dispatchStateEnteredEvent = (name, type, stateInput) => {
      checkPayload(`the input of state "${name}"`, stateInput);
      entered(name, type, stateInput);
    };
    logger.dispatchStateExitedEvent = (name, type, stateInput, output) => {
      checkPayload(`the output of state "${name}"`, output);
      exited(name, type, stateInput, output);
    };
    // Called where the state's error is about to be retried or caught: a check that throws here ends
    // the execution instead (the error and cause AWS could not record).
    logger.dispatchStateFailedEvent = (name, type, stateInput, error) => {
      if (!(error instanceof TerminalError)) checkErrorAndCause(`state "${name}"`, String(error.name), String(error.message));
      failed(name, type, stateInput, error);
    };
    return original.call(this, input, options, cleanup);
  };
  installed = true;
}
