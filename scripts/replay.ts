// `npm run replay -- <execution ARN or name>`: prints the exact `aws stepfunctions start-execution`
// that replays what that execution failed: its failed-keys manifests under manifests/failed/<name>/
// (docs/pipeline.md, "Replay"). It starts nothing itself.
import { checkExecutionName } from '../tools/local-sfn/limits';

const EXECUTION_ARN = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):execution:([^:/]+):([^:]+)$/;

/** The shell's single-quoted form of a value (a name may hold a single quote). */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command for an execution ARN (its state machine is in it) or a bare execution name (the state
 * machine's ARN is then `stateMachineArn`, or read from the batch stack's Terraform output).
 */
export function replayCommand(execution: string, stateMachineArn?: string): string {
  let name = execution;
  let machine = stateMachineArn ? shellQuote(stateMachineArn) : '"$(terraform -chdir=cdktf.out/stacks/batch output -raw state_machine_arn)"';
  if (execution.startsWith('arn:')) {
    const m = EXECUTION_ARN.exec(execution);
    if (!m) {
      throw new Error(
        `"${execution}" is not the ARN of one of the state machine's executions (arn:aws:states:<region>:<account>:execution:<state machine>:<name>); a Distributed Map child's failures are filed under its parent execution: replay that`,
      );
    }
    name = m[5];
    machine = shellQuote(`arn:${m[1]}:states:${m[2]}:${m[3]}:stateMachine:${m[4]}`);
  }
  checkExecutionName(name);
  return `aws stepfunctions start-execution --state-machine-arn ${machine} --input ${shellQuote(JSON.stringify({ replay: name }))}`;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0] === '--help' || args[0] === '-h') {
    const help =
      'usage: npm run replay -- <execution ARN or name>\nprints the aws stepfunctions start-execution command that converts again the keys that execution failed';
    if (args.length === 1) {
      console.log(help);
      process.exit(0);
    }
    console.error(help);
    process.exit(2);
  }
  try {
    console.log(replayCommand(args[0], process.env.STATE_MACHINE_ARN || undefined));
  } catch (e) {
    console.error(`npm run replay: ${(e as Error).message}`);
    process.exit(2);
  }
}
