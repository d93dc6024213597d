// Input routing and the input checks: which contract an input is, and that the keys or the prefix it
// names lie inside the input prefixes (the converter's role may read nothing else), before any task.
import { flow, formatLiteral, inlineProcessor, isString, states, type JsonObject } from './asl';
import {
  ECS_OVERRIDES_LIMIT_CHARS,
  FAILED_FOLDER,
  KEY_NEEDS_ESCAPES,
  KEY_OUTSIDE_INPUT,
  MAX_KEYS_PER_EXECUTION,
  PREFIX_OUTSIDE_INPUT,
  RESERVED_EXECUTION_NAME,
  SFN_HISTORY_EVENT_LIMIT,
  STATE,
  TOO_MANY_KEYS,
} from './constants';
import type { Settings } from './settings';

export function routeStates(s: Settings) {
  // `StringMatches` treats * and \ as special; States.Format literals treat ' { } \ as special.
  const matchesInput = (variable: string): JsonObject => {
    const rules: JsonObject[] = s.inputPrefixes.map((p) => ({ Variable: variable, StringMatches: `${p.replace(/[\\*]/g, '\\$&')}*` }));
    return { And: [{ Variable: variable, IsString: true }, rules.length === 1 ? rules[0] : { Or: rules }] };
  };
  // Characters JSON must escape (RFC 8259 section 7): a double quote, a backslash, U+0000 to U+001F.
  const needsEscapes = (variable: string): JsonObject => ({
    Or: ['"', '\\\\', ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c))].map((ch) => ({ Variable: variable, StringMatches: `*${ch}*` })),
  });
  const prefixList = formatLiteral(s.inputPrefixes.join(', '));

  return states({
    [STATE.route]: {
      Type: 'Choice',
      Choices: [
        { Variable: '$.ingest', IsPresent: true, Next: STATE.acceptIngest },
        // A type test on a missing path is a runtime error: test presence first (And short-circuits).
        { And: [...isString('$.manifest.bucket'), ...isString('$.manifest.key')], Next: STATE.acceptManifest },
        { And: isString('$.prefix'), Next: STATE.acceptPrefix },
        { And: isString('$.replay'), Next: STATE.acceptReplay },
        { And: isString('$[0]'), Next: STATE.keysWithinLimit },
      ],
      Default: STATE.invalidInput,
    },
    // Object inputs keep only the fields the machine reads: every other top-level field of the state
    // is then the machine's own (a caller's "error" or "results" could otherwise be mistaken for one).
    [STATE.acceptIngest]: { Type: 'Pass', Parameters: { 'ingest.$': '$.ingest' }, Next: STATE.ingestNameAllowed },
    // The ingest writes its manifests under its execution's name, beside the failed-keys folder.
    [STATE.ingestNameAllowed]: {
      Type: 'Choice',
      Choices: [{ Variable: '$$.Execution.Name', StringEquals: FAILED_FOLDER, Next: STATE.ingestNameReserved }],
      Default: STATE.acquireLock,
    },
    [STATE.ingestNameReserved]: {
      Type: 'Fail',
      Error: RESERVED_EXECUTION_NAME,
      Cause: `an ingest execution must not be named "${FAILED_FOLDER}": its manifests would land in ${s.failedPrefix}, where replays look for failed keys; start it under another name (nothing was ingested)`,
    },
    [STATE.acceptManifest]: {
      Type: 'Pass',
      Parameters: { manifest: { 'bucket.$': '$.manifest.bucket', 'key.$': '$.manifest.key' } },
      Next: STATE.convertManifest,
    },
    [STATE.acceptPrefix]: { Type: 'Pass', Parameters: { 'prefix.$': '$.prefix' }, Next: STATE.prefixAllowed },
    // A replay names an execution: only the failed-keys manifests under its name are listed.
    [STATE.acceptReplay]: { Type: 'Pass', Parameters: { 'replay.$': '$.replay' }, Next: STATE.convertReplay },
    [STATE.invalidInput]: {
      Type: 'Fail',
      Error: 'InvalidInput',
      Cause:
        'Expected a non-empty JSON array of S3 keys, {"prefix": "..."}, {"manifest": {"bucket": "...", "key": "..."}}, {"replay": "<execution name>"} or {"ingest": {}}',
    },

    // Keys and prefixes named by the caller must lie in the input prefixes: the converter's role may
    // read nothing else, so anything outside is refused up front, naming it, before a task starts.
    // (Manifest items are not checked here, one state transition per key; the role denies their read
    // and the converter reports each such key failed.)
    // Contract 1 is checked key by key in an inline Map (EVENTS_PER_CHECKED_KEY history events each):
    // more keys than the history can hold are refused at once, before any check or task.
    [STATE.keysWithinLimit]: {
      Type: 'Choice',
      Choices: [{ Variable: `$[${MAX_KEYS_PER_EXECUTION}]`, IsPresent: true, Next: STATE.describeTooManyKeys }],
      Default: STATE.checkKeys,
    },
    [STATE.describeTooManyKeys]: {
      Type: 'Pass',
      Parameters: {
        'cause.$': `States.Format('{} keys given: one execution takes at most ${MAX_KEYS_PER_EXECUTION} (Step Functions limits an execution to ${SFN_HISTORY_EVENT_LIMIT} history events); split the list, or write it to S3 as a JSON array and start the manifest input; nothing was converted', States.ArrayLength($))`,
      },
      Next: STATE.tooManyKeys,
    },
    [STATE.tooManyKeys]: { Type: 'Fail', Error: TOO_MANY_KEYS, CausePath: '$.cause' },
    [STATE.checkKeys]: {
      Type: 'Map',
      ItemsPath: '$',
      ItemProcessor: inlineProcessor(
        flow(STATE.keyAllowed, {
          [STATE.keyAllowed]: {
            Type: 'Choice',
            Choices: [
              { And: [matchesInput('$'), { Not: needsEscapes('$') }], Next: STATE.keyAccepted },
              { ...matchesInput('$'), Next: STATE.describeUnsafeKey },
            ],
            Default: STATE.describeRejectedKey,
          },
          [STATE.keyAccepted]: { Type: 'Pass', Result: true, End: true },
          [STATE.describeRejectedKey]: {
            Type: 'Pass',
            Parameters: { 'cause.$': `States.Format('key {} is outside the input prefixes (${prefixList}); nothing was converted', States.JsonToString($))` },
            Next: STATE.keyRejected,
          },
          [STATE.keyRejected]: { Type: 'Fail', Error: KEY_OUTSIDE_INPUT, CausePath: '$.cause' },
          [STATE.describeUnsafeKey]: {
            Type: 'Pass',
            Parameters: {
              'cause.$': `States.Format('key {} holds a double quote, a backslash or a control character: JSON escapes count twice against ECS\\'s ${ECS_OVERRIDES_LIMIT_CHARS}-character override limit, so its batch could not be started; nothing was converted', States.JsonToString($))`,
            },
            Next: STATE.keyUnsafe,
          },
          [STATE.keyUnsafe]: { Type: 'Fail', Error: KEY_NEEDS_ESCAPES, CausePath: '$.cause' },
        }),
      ),
      ResultPath: null,
      Next: STATE.convertKeys,
    },
    [STATE.prefixAllowed]: {
      Type: 'Choice',
      Choices: [{ ...matchesInput('$.prefix'), Next: STATE.convertPrefix }],
      Default: STATE.describeRejectedPrefix,
    },
    [STATE.describeRejectedPrefix]: {
      Type: 'Pass',
      Parameters: {
        'cause.$': `States.Format('prefix {} is outside the input prefixes (${prefixList}); nothing was converted', States.JsonToString($.prefix))`,
      },
      Next: STATE.prefixRejected,
    },
    [STATE.prefixRejected]: { Type: 'Fail', Error: PREFIX_OUTSIDE_INPUT, CausePath: '$.cause' },
  });
}
