// `npm run review` output: the report wraps to the terminal's width; progress goes to stderr, as one
// status line rewritten in place on a terminal and as plain lines elsewhere.
import { Progress, ProgressStream } from '../../tools/review/progress';
import { reportWidth, table, wrapText } from '../../tools/review/report';

describe('wrapping', () => {
  test('GIVEN a line longer than the width WHEN wrapped THEN it breaks at spaces, continuation lines indented, none too long', () => {
    const text = 'Allow  s3:GetObject, s3:PutObject, s3:DeleteObject  xml-bucket/incoming/*, xml-bucket/manifests/*, xml-bucket/json/*';
    const lines = wrapText(text, 40, '       ');
    expect(lines).toEqual([
      'Allow  s3:GetObject, s3:PutObject,',
      '       s3:DeleteObject',
      '       xml-bucket/incoming/*,',
      '       xml-bucket/manifests/*,',
      '       xml-bucket/json/*',
    ]);
    expect(lines.join(' ').replace(/\s+/g, ' ')).toBe(text.replace(/\s+/g, ' '));
  });

  test('GIVEN a word longer than the width THEN it is cut, never dropped', () => {
    expect(wrapText('arn:aws:s3:::a-very-long-bucket-name-without-spaces', 20, '  ')).toEqual([
      'arn:aws:s3:::a-very-',
      '  long-bucket-name-w',
      '  ithout-spaces',
    ]);
  });

  test('GIVEN a short line or no width THEN it is unchanged', () => {
    expect(wrapText('short', 80)).toEqual(['short']);
    expect(wrapText('x '.repeat(500).trim(), Infinity)).toEqual(['x '.repeat(500).trim()]);
  });

  test('GIVEN a table WHEN wrapped THEN columns stay aligned and the last column continues under itself', () => {
    const rows = [
      ['Allow', 's3:GetObject', 'bucket/a/*, bucket/b/*, bucket/c/*, bucket/d/*'],
      ['Deny', '*', 'everything'],
    ];
    const out = table(rows, '    ', 60).split('\n');
    expect(out).toEqual([
      '    Allow  s3:GetObject  bucket/a/*, bucket/b/*, bucket/c/*,',
      '                         bucket/d/*',
      '    Deny   *             everything',
    ]);
    expect(Math.max(...out.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(table(rows, '    ')).toBe('    Allow  s3:GetObject  bucket/a/*, bucket/b/*, bucket/c/*, bucket/d/*\n    Deny   *             everything');
  });

  test("the width is the terminal's; without a terminal COLUMNS, else no wrapping", () => {
    expect(reportWidth({ isTTY: true, columns: 91 }, { COLUMNS: '50' })).toBe(91);
    expect(reportWidth({ isTTY: false }, { COLUMNS: '50' })).toBe(50);
    expect(reportWidth({ isTTY: false }, { COLUMNS: 'wide' })).toBe(Infinity);
    expect(reportWidth({}, {})).toBe(Infinity);
  });
});

describe('progress', () => {
  const stream = (isTTY: boolean, columns = 80) => {
    const written: string[] = [];
    const s: ProgressStream & { written: string[] } = { isTTY, columns, written, write: (t: string) => written.push(t) };
    return s;
  };
  let now = 0;
  const clock = () => now;

  test('GIVEN no terminal WHEN stacks are planned THEN one plain line per event, with counts and elapsed seconds', () => {
    now = 0;
    const s = stream(false);
    const p = new Progress({ stream: s, now: clock });
    p.begin('planning', 2);
    p.step('batch', 'init');
    now = 12_000;
    p.finish('batch', 'plan: 3 to add');
    p.end();
    expect(s.written.join('')).toBe('planning (2) ... 0 s\n  batch: init ... 0 s\n  batch: plan: 3 to add (1/2, 12 s)\n');
  });

  test('GIVEN a terminal THEN one status line is rewritten in place, cut to its width, and cleared at the end', () => {
    now = 0;
    const s = stream(true, 40);
    const p = new Progress({ stream: s, now: clock, tickMs: 0 });
    p.begin('planning', 7);
    p.step('batch', 'plan');
    p.step('monitoring-and-more', 'init');
    now = 5_000;
    p.finish('batch', 'planned');
    p.end();
    expect(s.written).toEqual([
      '\r\x1b[Kplanning 0/7 ... 0 s',
      '\r\x1b[Kplanning 0/7: batch (plan) ... 0 s',
      '\r\x1b[Kplanning 0/7: batch (plan), monitori...',
      '\r\x1b[Kplanning 1/7: monitoring-and-more (i...',
      '\r\x1b[K',
    ]);
    for (const w of s.written) expect(w.replace('\r\x1b[K', '').length).toBeLessThanOrEqual(39);
  });
});
