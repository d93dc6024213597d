// Terraform references in synthesized text (used by readers of cdktf.out; kept here until tools/tf-json.ts holds the one scanner).

/**
 * Replaces each Terraform interpolation `${...}` in synthesized text with a placeholder (`TF_REF_<n>`),
 * so a definition or container JSON read back from cdktf.out parses even where an expression holds
 * quotes. Returns the text and the expressions by placeholder.
 */
export function maskTerraformRefs(text: string): { text: string; refs: Record<string, string> } {
  const refs: Record<string, string> = {};
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) break;
    out += text.slice(i, start);
    let depth = 0;
    let j = start + 1;
    let quote = false;
    for (; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === '\\') j++;
        else if (c === '"') quote = false;
      } else if (c === '"') quote = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) break;
    }
    if (j >= text.length) throw new Error(`unterminated Terraform reference at offset ${start}`);
    const expression = text.slice(start, j + 1);
    // The same expression always gets the same placeholder.
    const name = Object.keys(refs).find((k) => refs[k] === expression) ?? `TF_REF_${Object.keys(refs).length}`;
    refs[name] = expression;
    out += name;
    i = j + 1;
  }
  return { text: out + text.slice(i), refs };
}
