// The offline security model of a synthesized app (the IAM matrix, the baseline tests, `npm run review`,
// the local Step Functions run): one module per job.
export * from './exposure';
export * from './model';
export * from './policy';
export * from './resolver';
export * from './simulate';
