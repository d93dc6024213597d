// Runs s3rver in its own process: it needs `node --openssl-legacy-provider` (paged listings use
// an MD5-based continuation token), which a jest worker cannot switch on for itself.
// Usage: node --openssl-legacy-provider s3rver-child.js DIR BUCKET[,BUCKET...] [PORT]
'use strict';
const S3rver = require('s3rver');

const [directory, buckets = '', port = '0'] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: true,
  configureBuckets: buckets.split(',').filter(Boolean).map((name) => ({ name })),
});
server.run().then(
  ({ port: actual }) => process.stdout.write(`LISTENING ${actual}\n`),
  (err) => {
    process.stderr.write(`s3rver failed: ${err.stack || err}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
