// The converter's RUN_ID rule is the Step Functions execution-name rule, written again inside the image
// (which builds on its own): this keeps the two in step, character by character.
import { configFromEnv } from '../images/converter/src/main';
import { checkExecutionName } from '../tools/local-sfn/limits';

const acceptedBy = {
  stepFunctions: (name: string) => {
    try {
      checkExecutionName(name);
      return true;
    } catch {
      return false;
    }
  },
  converter: (name: string) => {
    try {
      configFromEnv({ BUCKET: 'b', S3PATH: 'k', RUN_ID: name, BATCH_ID: '00001' });
      return true;
    } catch {
      return false;
    }
  },
};

describe('RUN_ID (the execution name the state machine passes)', () => {
  test('GIVEN every character up to U+3000 inside a name WHEN checked THEN the converter accepts exactly what Step Functions accepts', () => {
    const disagree: string[] = [];
    for (let c = 0; c <= 0x3000; c++) {
      const name = `run${String.fromCharCode(c)}1`;
      if (acceptedBy.stepFunctions(name) !== acceptedBy.converter(name)) disagree.push(`U+${c.toString(16).padStart(4, '0')}`);
    }
    expect(disagree).toEqual([]);
  });

  test('GIVEN names at the length limit, "+"/non-ASCII names and the path segments "." and ".." THEN only "." and ".." differ (the converter refuses them)', () => {
    const names = ['x'.repeat(80), 'x'.repeat(81), '', 'nachlauf+1@Zürich', '.', '..', '...'];
    expect(names.map((n) => [n.length > 10 ? n.length : n, acceptedBy.stepFunctions(n), acceptedBy.converter(n)])).toEqual([
      [80, true, true],
      [81, false, false],
      ['', false, false],
      [17, true, true],
      ['.', true, false],
      ['..', true, false],
      ['...', true, true],
    ]);
  });
});
