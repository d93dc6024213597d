// Where the repository and the XML conformance corpus are, from the sources or from dist/ alike.
import * as path from 'node:path';

/** The repository root (this file is scripts/paths.ts, or dist/scripts/paths.js once compiled). */
export const REPO_ROOT = path.resolve(__dirname, '..', ...(path.basename(path.dirname(__dirname)) === 'dist' ? ['..'] : []));

/**
 * The corpus the tests, `npm run local`, `bench:convert` and the smoke run read; expected outputs are
 * xmltodict 0.13's (its README). `XML_CORPUS_DIR` points them all at another copy.
 */
export const CORPUS_DIR = process.env.XML_CORPUS_DIR ?? path.join(REPO_ROOT, '__tests__', 'fixtures', 'xml-corpus');
