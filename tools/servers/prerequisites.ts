// Programs the local tooling runs (npm run local: a real OpenSSH sshd and ssh-keygen), looked up on
// PATH before anything starts, so a machine without them gets one line saying what to install instead
// of a stack trace from deep inside a server's start.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Program {
  /** Executable name looked up on PATH. */
  readonly bin: string;
  /** Debian/Ubuntu package that installs it. */
  readonly pkg: string;
}

/** What `npm run local` starts: OpenSSH's server and the key generator its test accounts use. */
export const OPENSSH: Program[] = [
  { bin: 'sshd', pkg: 'openssh-server' },
  { bin: 'ssh-keygen', pkg: 'openssh-client' },
];

/** The executable `bin` on `env.PATH`, or undefined. */
export function findOnPath(bin: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, bin);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** One line naming every program missing from PATH and how to install them; undefined when none is. */
export function missingPrograms(what: string, programs: Program[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const missing = programs.filter((p) => !findOnPath(p.bin, env));
  if (missing.length === 0) return undefined;
  const pkgs = [...new Set(missing.map((p) => p.pkg))].join(' ');
  return `${what} needs ${missing.map((p) => p.bin).join(' and ')} (OpenSSH), not found on PATH: install with \`sudo apt-get install ${pkgs}\` (Debian/Ubuntu), or add the folder holding ${missing.length > 1 ? 'them' : 'it'} (sshd: usually /usr/sbin) to PATH`;
}
