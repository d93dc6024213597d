// The text of `npm run review`: per stack its resources, IAM matrix (statements with concrete ARNs,
// S3 access simulated per role, bucket and prefix), network exposure and offline plan, each line
// wrapped to the terminal's width.
import type { PlanResult } from './offline-plan';
import type { ExposureItem } from './exposure';
import { type BucketModel, type RoleModel, type SecurityModel } from './model';
import { asArray, statementsOf, trustedPrincipals } from './policy';
import { FAKE_ACCOUNT } from './resolver';
import { simulate } from './simulate';

const short = (arn: string) => arn.replace(`:${FAKE_ACCOUNT}:`, '::').replace(/^arn:aws:/, '');

function conditionText(c: Record<string, Record<string, string | string[]>> | undefined): string {
  if (!c) return '';
  return Object.entries(c)
    .flatMap(([op, kv]) => Object.entries(kv).map(([k, v]) => `${k} ${op} ${asArray(v).map(short).join('|')}`))
    .join('; ');
}

/**
 * Rows as aligned columns; the last column wraps (at spaces) to `width`, its continuation lines
 * aligned under it, so nothing runs past the terminal's edge.
 */
export function table(rows: string[][], indent = '    ', width = Infinity): string {
  if (rows.length === 0) return `${indent}(none)`;
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => {
      const head =
        indent +
        r
          .slice(0, -1)
          .map((c, i) => `${c.padEnd(widths[i])}  `)
          .join('');
      // Too little room beside the other columns: continue under the row's start instead.
      const under = width - head.length >= 30 ? ' '.repeat(head.length) : `${indent}    `;
      return wrapText((head + (r[r.length - 1] ?? '')).trimEnd(), width, under).join('\n');
    })
    .join('\n');
}

/** One line of text as lines of at most `width` characters, broken at spaces where possible. */
export function wrapText(text: string, width: number, continuation = ''): string[] {
  const lines: string[] = [];
  let rest = text;
  let prefix = '';
  while (prefix.length + rest.length > width) {
    const room = Math.max(width - prefix.length, 10);
    const space = rest.lastIndexOf(' ', room);
    const cut = space > 0 && rest.slice(0, space).trim() ? space : room;
    lines.push(prefix + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
    prefix = continuation;
  }
  lines.push(prefix + rest);
  return lines;
}

/** Where the report wraps: the terminal's width; when stdout is no terminal, COLUMNS if set, else never. */
export function reportWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  if (stream.isTTY && stream.columns) return stream.columns;
  const columns = Number(env.COLUMNS);
  return Number.isInteger(columns) && columns > 0 ? columns : Infinity;
}

/** S3 object prefixes a bucket's grants name (`''` for the whole bucket), plus one nobody was granted. */
export function probePrefixes(model: SecurityModel, bucket: BucketModel): string[] {
  const prefixes = new Set<string>();
  for (const r of model.roles) {
    for (const p of r.policies) {
      for (const st of statementsOf(p.document)) {
        for (const res of asArray(st.Resource)) {
          if (res.startsWith(`${bucket.arn}/`)) prefixes.add(res.slice(bucket.arn.length + 1).replace(/\*$/, ''));
        }
      }
    }
  }
  prefixes.add('some-other-prefix/');
  return [...prefixes].sort();
}

/** Per role with any S3 grant: Get/Put/Delete/List on each bucket prefix, as iam-simulate decides. */
export async function s3Matrix(model: SecurityModel, roles: RoleModel[], width = Infinity): Promise<string> {
  const rows: string[][] = [['role', 'bucket/prefix', 'get', 'put', 'delete', 'list']];
  const mark = (d: string) => (d === 'Allowed' ? 'yes' : d === 'ExplicitlyDenied' ? 'DENY' : '-');
  for (const role of roles) {
    const touchesS3 = role.policies.some((p) => statementsOf(p.document).some((st) => asArray(st.Action).some((a) => a.startsWith('s3:'))));
    if (!touchesS3) continue;
    for (const bucket of model.buckets) {
      for (const prefix of probePrefixes(model, bucket)) {
        const key = `${bucket.arn}/${prefix}example.xml`;
        const get = await simulate(model, role, { action: 's3:GetObject', resource: key });
        const put = await simulate(model, role, { action: 's3:PutObject', resource: key });
        const del = await simulate(model, role, { action: 's3:DeleteObject', resource: key });
        const list = await simulate(model, role, { action: 's3:ListBucket', resource: bucket.arn, context: { 's3:prefix': prefix } });
        if ([get, put, del, list].every((d) => d !== 'Allowed')) continue;
        rows.push([role.name, `${bucket.name}/${prefix}`, mark(get), mark(put), mark(del), mark(list)]);
      }
    }
  }
  return rows.length > 1 ? table(rows, '    ', width) : '    (no S3 access)';
}

export function iamSection(model: SecurityModel, stack: string, width = Infinity): string {
  const out: string[] = [];
  for (const role of model.roles.filter((r) => r.stack === stack)) {
    const trust = statementsOf(role.trust)
      .map((st) => conditionText(st.Condition))
      .filter(Boolean)
      .join('; ');
    out.push(...wrapText(`  role ${role.name}: assumed by ${trustedPrincipals(role.trust).join(', ')}${trust ? ` when ${trust}` : ''}`, width, '      '));
    const rows: string[][] = [];
    for (const p of role.policies) {
      for (const st of statementsOf(p.document)) {
        rows.push([st.Effect, asArray(st.Action).join(', '), asArray(st.Resource).map(short).join(', '), conditionText(st.Condition)]);
      }
    }
    out.push(table(rows, '    ', width));
  }
  for (const b of model.buckets.filter((x) => x.stack === stack)) {
    out.push(`  bucket policy of ${b.name}:`);
    out.push(
      table(
        statementsOf(b.policy ?? { Version: '', Statement: [] }).map((st) => [
          st.Effect,
          `principal ${JSON.stringify(st.Principal)}`,
          asArray(st.Action).join(', '),
          conditionText(st.Condition),
        ]),
        '    ',
        width,
      ),
    );
  }
  return out.length ? out.join('\n') : '  (no IAM roles or bucket policies)';
}

export function planLine(p: PlanResult | undefined): string {
  if (!p) return 'not planned';
  if (p.status !== 'planned') return `${p.status}: ${p.reason}`;
  const a = p.actions ?? {};
  const n = (k: string) => a[k] ?? 0;
  return `plan: ${n('create')} to add, ${n('update')} to change, ${n('delete') + n('replace')} to destroy${n('replace') ? ` (${n('replace')} replaced)` : ''}${n('read') ? `, ${n('read')} data source(s) read at apply` : ''}`;
}

/** The report's section for one stack: resources by type, IAM, simulated S3 access, network exposure. */
export async function stackSection(
  model: SecurityModel,
  stack: string,
  exposure: ExposureItem[],
  plan: PlanResult | undefined,
  width = Infinity,
): Promise<string> {
  const json = model.app.stacks[stack];
  const counts = Object.entries(json.resource ?? {})
    .map(([type, byName]) => [type, String(Object.keys(byName).length)] as [string, string])
    .sort();
  const total = counts.reduce((n, [, c]) => n + Number(c), 0);
  const out = [
    ...wrapText(`\n=== stack ${stack}: ${total} resources; ${planLine(plan)}`, width, '    '),
    '  resources by type:',
    table(
      counts.map(([t, c]) => [c.padStart(3), t]),
      '    ',
      width,
    ),
    '  IAM:',
    iamSection(model, stack, width),
  ];
  const roles = model.roles.filter((r) => r.stack === stack);
  if (roles.length) out.push('  S3 access (simulated; "-" = implicitly denied):', await s3Matrix(model, roles, width));
  out.push(
    '  network exposure:',
    table(
      exposure.filter((e) => e.stack === stack).map((e) => [e.public ? 'PUBLIC' : 'private', e.kind, e.detail]),
      '    ',
      width,
    ),
  );
  return out.join('\n');
}
