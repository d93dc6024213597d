// aws-local-stepfunctions' StateMachine, on the Node this machine has.
// aws-local-stepfunctions uses Promise.withResolvers (Node >= 22).
const P = Promise as unknown as { withResolvers?: () => unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const { StateMachine } = require('aws-local-stepfunctions') as typeof import('aws-local-stepfunctions');
