// EventBridge Scheduler schedule expressions, checked against the grammar AWS documents, so a schedule
// AWS would refuse fails at synth instead of at apply:
// - https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html (rate, cron, at)
// - https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html (cron fields
//   and wildcards) and .../eb-rate-expressions.html (rate: singular unit for 1, plural otherwise)

interface CronField {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names allowed for values (JAN-DEC, SUN-SAT), index 0 = min. */
  readonly names?: readonly string[];
  /** Wildcards beyond `, - * /` that the field allows. */
  readonly extra: '' | '?LW' | '?L#';
}

const CRON_FIELDS: readonly CronField[] = [
  { name: 'minutes', min: 0, max: 59, extra: '' },
  { name: 'hours', min: 0, max: 23, extra: '' },
  { name: 'day-of-month', min: 1, max: 31, extra: '?LW' },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'], extra: '' },
  { name: 'day-of-week', min: 1, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'], extra: '?L#' },
  { name: 'year', min: 1970, max: 2199, extra: '' },
];

/** A value of the field (number or name), or undefined. */
function value(field: CronField, text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= field.min && n <= field.max ? n : undefined;
  }
  const i = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return i >= 0 ? field.min + i : undefined;
}

/** Why one comma-separated item of a cron field is invalid, or undefined. */
function itemProblem(field: CronField, item: string): string | undefined {
  const range = `${field.min}-${field.max}${field.names ? ` or ${field.names[0]}-${field.names[field.names.length - 1]}` : ''}`;
  const bad = (why: string) => `${field.name} "${item}": ${why}`;
  if (item === '?') return field.extra.includes('?') ? undefined : bad('"?" is allowed only in day-of-month and day-of-week');
  if (field.extra === '?LW') {
    // L (last day), LW (last weekday), nW (weekday nearest day n).
    if (item === 'L' || item === 'LW') return undefined;
    const w = /^(\d+)W$/.exec(item);
    if (w) return value(field, w[1]) === undefined ? bad(`day must be ${range}`) : undefined;
  }
  if (field.extra === '?L#') {
    // dL (last weekday d of the month), d#n (n-th weekday d of the month, n 1-5).
    if (item === 'L') return undefined;
    const last = /^(\w+)L$/.exec(item);
    if (last) return value(field, last[1]) === undefined ? bad(`weekday must be ${range}`) : undefined;
    const nth = /^(\w+)#(\d)$/.exec(item);
    if (nth) {
      if (value(field, nth[1]) === undefined) return bad(`weekday must be ${range}`);
      return Number(nth[2]) >= 1 && Number(nth[2]) <= 5 ? undefined : bad('the week after "#" must be 1-5');
    }
  }
  const [base, step, ...more] = item.split('/');
  if (more.length > 0) return bad('more than one "/"');
  if (step !== undefined) {
    if (!/^\d+$/.test(step) || Number(step) < 1 || Number(step) > field.max) return bad(`the increment after "/" must be 1-${field.max}`);
  }
  if (base === '*') return undefined;
  const [from, to, ...rest] = base.split('-');
  if (rest.length > 0) return bad('more than one "-"');
  const a = value(field, from);
  if (a === undefined) return bad(`"${from}" is not a value (${range})`);
  if (to === undefined) return undefined;
  const b = value(field, to);
  if (b === undefined) return bad(`"${to}" is not a value (${range})`);
  return a <= b ? undefined : bad('a range must go from low to high');
}

function cronProblem(fields: string[]): string | undefined {
  if (fields.length !== 6) return `cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
  for (const [i, text] of fields.entries()) {
    const field = CRON_FIELDS[i];
    const items = text.split(',');
    if (items.length > 1 && items.some((x) => x === '?' || x === '*')) return `${field.name} "${text}": "*" and "?" stand alone, not in a list`;
    for (const item of items) {
      const problem = itemProblem(field, item);
      if (problem) return problem;
    }
  }
  // One of day-of-month and day-of-week must be "?" (the other says which days).
  const [dom, dow] = [fields[2], fields[4]];
  if ((dom === '?') === (dow === '?')) return 'exactly one of day-of-month and day-of-week must be "?"';
  return undefined;
}

/** Why `expr` is not a schedule expression EventBridge Scheduler accepts, or undefined. */
export function scheduleProblem(expr: string): string | undefined {
  const rate = /^rate\((.*)\)$/.exec(expr);
  if (rate) {
    const m = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(rate[1]);
    if (!m) return `"${expr}": rate() takes "<positive integer> minute(s)|hour(s)|day(s)"`;
    const n = Number(m[1]);
    if (n < 1) return `"${expr}": the rate must be a positive integer`;
    const singular = !m[2].endsWith('s');
    if (n === 1 && !singular) return `"${expr}": use the singular unit for 1 (e.g. rate(1 ${m[2].slice(0, -1)}))`;
    if (n !== 1 && singular) return `"${expr}": use the plural unit for ${n} (e.g. rate(${n} ${m[2]}s))`;
    return undefined;
  }
  const cron = /^cron\((.*)\)$/.exec(expr);
  if (cron) {
    const problem = cronProblem(cron[1].trim().split(/\s+/));
    return problem ? `"${expr}": ${problem}` : undefined;
  }
  const at = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(expr);
  if (at) {
    const [y, mo, d, h, mi, s] = at.slice(1).map(Number);
    const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    const real = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && h < 24 && mi < 60 && s < 60;
    return real ? undefined : `"${expr}": not a real date and time`;
  }
  return `"${expr}" is not a schedule expression: use rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)`;
}
