// bench:convert's lower bound: saxes (configured as the converter configures it) plus the least work that
// turns its events into xmltodict-shaped JSON (compact, no indentation, no limits, no spill, no
// Python-exact stripping or escaping). Not a converter: it only shows what any converter built on saxes
// costs at least, to set beside the real one.
// Usage: node least-work.js INPUT.xml OUTPUT.json CONVERTER_DIR (where saxes is installed)
'use strict';
const fs = require('node:fs');
const [input, output, converterDir] = process.argv.slice(2);
const { SaxesParser } = require(require.resolve('saxes', { paths: [converterDir] }));

const PRINTABLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const quote = (s) => (PRINTABLE.test(s) ? '"' + s + '"' : JSON.stringify(s));
const fd = fs.openSync(output, 'w');
let pending = [];
let pendingChars = 0;
function emit(s) {
  pending.push(s);
  pendingChars += s.length;
  if (pendingChars >= 1 << 20) flush();
}
function flush() {
  fs.writeSync(fd, Buffer.from(pending.join(''), 'utf8'));
  pending = [];
  pendingChars = 0;
}

const stack = []; // open elements: { name, head (rendered attributes), text, children: Map name -> values }
const parser = new SaxesParser({ forceXMLVersion: true, defaultXMLVersion: '1.0' });
parser.on('opentag', (tag) => {
  let head = '';
  for (const k in tag.attributes) head += (head === '' ? '{' : ',') + quote('@' + k) + ':' + quote(tag.attributes[k]);
  stack.push({ name: tag.name, head, text: '', children: null });
});
const addText = (t) => {
  const f = stack[stack.length - 1];
  if (f !== undefined && (f.text !== '' || t.trim() !== '')) f.text += t;
};
parser.on('text', addText);
parser.on('cdata', addText);
parser.on('closetag', () => {
  const f = stack.pop();
  const text = f.text.trim();
  let value;
  if (f.head === '' && f.children === null) {
    value = text === '' ? 'null' : quote(text);
  } else {
    value = f.head;
    if (f.children !== null)
      for (const [k, vs] of f.children) value += (value === '' ? '{' : ',') + quote(k) + ':' + (vs.length > 1 ? '[' + vs.join(',') + ']' : vs[0]);
    if (text !== '') value += (value === '' ? '{' : ',') + '"#text":' + quote(text);
    value += '}';
  }
  const parent = stack[stack.length - 1];
  if (parent === undefined || stack.length === 1) {
    // The root, or one of its children: written out at once, one per line (the record layout streams).
    emit(value + '\n');
    return;
  }
  parent.children ??= new Map();
  const values = parent.children.get(f.name);
  if (values === undefined) parent.children.set(f.name, [value]);
  else values.push(value);
});
parser.on('error', (e) => {
  throw e;
});
const stream = fs.createReadStream(input, { encoding: 'utf8', highWaterMark: 1 << 16 });
stream.on('data', (chunk) => parser.write(chunk));
stream.on('end', () => {
  parser.close();
  flush();
  fs.closeSync(fd);
});
