// tools/tf-json: the one reader of synthesized Terraform JSON and the one scanner of ${...} references.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listStacks, maskTerraformRefs, parseWithRefs, readApp, readStack, splitTerraformRefs } from '../tools/tf-json';

const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A synthesized-app folder: manifest.json plus stacks/NAME/cdk.tf.json for each stack. */
function app(stacks: Record<string, { deps?: string[]; json?: unknown; raw?: string }>): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-json-'));
  made.push(outdir);
  const manifest: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(stacks)) {
    fs.mkdirSync(path.join(outdir, 'stacks', name), { recursive: true });
    fs.writeFileSync(path.join(outdir, 'stacks', name, 'cdk.tf.json'), s.raw ?? JSON.stringify(s.json ?? { resource: {} }));
    manifest[name] = { name, synthesizedStackPath: `stacks/${name}/cdk.tf.json`, dependencies: s.deps ?? [] };
  }
  fs.writeFileSync(path.join(outdir, 'manifest.json'), JSON.stringify({ version: '0.21.0', stacks: manifest }));
  return outdir;
}

describe('splitTerraformRefs', () => {
  test.each([
    ['no reference', 'plain', ['plain']],
    ['one reference', 'arn:${aws_s3_bucket.b.arn}/*', ['arn:', { expr: 'aws_s3_bucket.b.arn' }, '/*']],
    ['adjacent references', '${a.b}${c.d}', [{ expr: 'a.b' }, { expr: 'c.d' }]],
    ['raw quotes holding braces', 'x-${try(regex("SHA256:[A-Z]{43}", var.k), "")}!', ['x-', { expr: 'try(regex("SHA256:[A-Z]{43}", var.k), "")' }, '!']],
    ['JSON-escaped quotes holding braces', '{\\"k\\":\\"${lookup(m, \\"}\\")}\\"}', ['{\\"k\\":\\"', { expr: 'lookup(m, \\"}\\")' }, '\\"}']],
    ['nested braces', '${jsonencode({a = {b = 1}})}', [{ expr: 'jsonencode({a = {b = 1}})' }]],
  ])('%s', (_name, text, parts) => {
    expect(splitTerraformRefs(text)).toEqual(parts);
  });

  test('an unterminated expression is an error naming its offset', () => {
    expect(() => splitTerraformRefs('ab${x.y')).toThrow('unterminated Terraform expression at offset 2: ${x.y');
    expect(() => splitTerraformRefs('${f("}")')).toThrow(/offset 0/);
  });
});

describe('maskTerraformRefs and parseWithRefs', () => {
  // As cdktf writes references into JSON held in a string: raw, unescaped quotes inside the string.
  const text = JSON.stringify({ a: '${aws_s3_bucket.b.id}', b: 'x-${try(regex("SHA256:[A-Z]{43}", var.k), "")}', c: '${aws_s3_bucket.b.id}/k' }).replace(
    /\\"/g,
    '"',
  );

  test('GIVEN expressions with quotes and braces WHEN masked THEN the JSON parses and equal expressions share a placeholder', () => {
    expect(() => JSON.parse(text)).toThrow();
    const masked = maskTerraformRefs(text);
    expect(JSON.parse(masked.text)).toEqual({ a: 'TF_REF_0', b: 'x-TF_REF_1', c: 'TF_REF_0/k' });
    expect(masked.refs).toEqual({ TF_REF_0: '${aws_s3_bucket.b.id}', TF_REF_1: '${try(regex("SHA256:[A-Z]{43}", var.k), "")}' });
  });

  test('GIVEN the same text WHEN parsed with references THEN each string holds its expressions as written', () => {
    expect(parseWithRefs(text)).toEqual({ a: '${aws_s3_bucket.b.id}', b: 'x-${try(regex("SHA256:[A-Z]{43}", var.k), "")}', c: '${aws_s3_bucket.b.id}/k' });
  });
});

describe('reading a synthesized app', () => {
  test('GIVEN a manifest WHEN listed THEN stacks come in deploy order (dependencies first, ties by name) with counts and providers', () => {
    const outdir = app({
      sftp: { deps: ['network'], json: { provider: { aws: [{}] }, resource: { aws_transfer_server: { s: {} } } } },
      network: { json: { provider: { aws: [{}] }, resource: { aws_vpc: { v: {} }, aws_subnet: { a: {}, b: {} } } } },
      images: { deps: ['cluster'], json: { provider: { aws: [{}], docker: [{}] } } },
      cluster: { deps: ['network'] },
    });
    const stacks = listStacks(outdir);
    expect(stacks.map((s) => [s.name, s.resourceCount, s.providers])).toEqual([
      ['network', 3, ['aws']],
      ['cluster', 0, []],
      ['images', 0, ['aws', 'docker']],
      ['sftp', 1, ['aws']],
    ]);
    expect(stacks[0].dir).toBe(path.join(outdir, 'stacks', 'network'));
    expect(Object.keys(readApp(outdir).stacks)).toEqual(['cluster', 'images', 'network', 'sftp']);
  });

  test('GIVEN a stack WHEN read THEN resources() and only() find resources by type; only() names the stack when not exactly one', () => {
    const outdir = app({ network: { json: { resource: { aws_vpc: { v: { cidr_block: '10.0.0.0/16' } }, aws_subnet: { a: {}, b: {} } } } } });
    const network = readStack(outdir, 'network');
    expect(network.only('aws_vpc')).toEqual({ cidr_block: '10.0.0.0/16' });
    expect(Object.keys(network.resources('aws_subnet'))).toEqual(['a', 'b']);
    expect(network.resources('aws_instance')).toEqual({});
    expect(() => network.only('aws_subnet')).toThrow(/expected exactly one aws_subnet in stack network \(.*cdk\.tf\.json\), found 2/);
  });

  test.each([
    ['a dependency cycle', { a: { deps: ['b'] }, b: { deps: ['a'] } }, /stack dependency cycle: a -> b -> a/],
    ['a dependency the manifest does not list', { a: { deps: ['zz'] } }, /manifest\.json: stack a depends on zz, which it does not list/],
    ['a stack file that is not JSON', { a: { raw: '{"resource": ' } }, /stacks\/a\/cdk\.tf\.json: not valid JSON/],
  ])('GIVEN %s WHEN listed THEN a clear error names it', (_name, stacks, error) => {
    expect(() => listStacks(app(stacks))).toThrow(error);
  });

  test('GIVEN a folder that was never synthesized WHEN read THEN the error names the file and what to run', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-json-empty-'));
    made.push(empty);
    expect(() => listStacks(empty)).toThrow(`cannot read ${path.join(empty, 'manifest.json')}`);
    expect(() => readStack(empty, 'batch')).toThrow(/stacks\/batch\/cdk\.tf\.json: .*\(synthesize first: npm run synth\)/);
  });
});
