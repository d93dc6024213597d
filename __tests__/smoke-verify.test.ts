// GIVEN the lab's sample files converted by the real converter entrypoint into a local S3 server, laid
// out as the deployed pipeline lays them out, WHEN the smoke run's verification half reads them back
// THEN it reports each output identical, different (with the first differing byte) or missing, and
// prints one table row per file. (The deploy/destroy half needs an AWS account: `npm run smoke`.)
import { DEFAULT_LAYOUT } from '../stacks/constructs/refs';
import { formatTable, labCases, SmokeCase, verifyOutputs } from '../scripts/smoke-verify';
import { CORPUS_DIR, runConverterMain } from '../tools/servers/converter-records';
import { S3Server, startS3 } from '../tools/servers/s3';
import * as path from 'node:path';

const BUCKET = 'xml';
const cases = labCases(path.join(CORPUS_DIR, 'lab'));
const inputKey = (c: SmokeCase) => `${DEFAULT_LAYOUT.ingestPrefix}${c.name}`;
const outputKeyOf = (c: SmokeCase) => `${DEFAULT_LAYOUT.outputPrefix}${inputKey(c)}.json`;

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3([BUCKET]);
  for (const c of cases) await s3.put(BUCKET, inputKey(c), c.xml);
  // The converter as the state machine runs it: keys in S3PATHS, outputs under OUTPUT_PREFIX.
  const run = await runConverterMain({
    ...s3.env,
    BUCKET,
    S3PATHS: JSON.stringify(cases.map(inputKey)),
    OUTPUT_PREFIX: DEFAULT_LAYOUT.outputPrefix,
  });
  expect(run.code).toBe(0);
});
afterAll(async () => {
  await s3?.dispose();
});

test('the lab samples are the two files the lab shipped', () => {
  expect(cases.map((c) => c.name)).toEqual(['customer.xml', 'plane.xml']);
});

test('outputs the converter wrote are identical to the lab converter output', async () => {
  const rows = await verifyOutputs(s3.client(), BUCKET, cases, outputKeyOf);
  expect(rows.map((r) => [r.name, r.verdict, r.outputBytes])).toEqual(cases.map((c) => [c.name, 'identical', c.expected.length]));
  const table = formatTable(rows).split('\n');
  expect(table).toHaveLength(cases.length + 2);
  expect(table[0]).toMatch(/^file\s+xml bytes\s+expected bytes\s+output bytes\s+result$/);
  expect(table[1]).toMatch(new RegExp(`^customer\\.xml\\s+${cases[0].xml.length}\\s+${cases[0].expected.length}\\s+${cases[0].expected.length}\\s+identical$`));
  expect(table.at(-1)).toBe("2 of 2 outputs identical to the lab's");
});

test('a changed output is reported different at its first differing byte; a missing one as missing', async () => {
  const [customer, plane] = cases;
  const tampered = Buffer.from(customer.expected);
  tampered[100] = tampered[100] === 0x41 ? 0x42 : 0x41;
  await s3.put(BUCKET, 'tampered/customer.xml.json', tampered);
  // One byte short: a truncated output differs where it ends.
  await s3.put(BUCKET, 'tampered/plane.xml.json', plane.expected.subarray(0, plane.expected.length - 1));
  const rows = await verifyOutputs(s3.client(), BUCKET, [...cases, { ...customer, name: 'absent.xml' }], (c) => `tampered/${c.name}.json`);
  expect(rows.map((r) => [r.name, r.verdict, r.firstDifference])).toEqual([
    ['customer.xml', 'different', 100],
    ['plane.xml', 'different', plane.expected.length - 1],
    ['absent.xml', 'missing', undefined],
  ]);
  const table = formatTable(rows);
  expect(table).toContain('different from byte 100');
  expect(table.split('\n').at(-1)).toBe("0 of 3 outputs identical to the lab's");
});
