'use strict';
// The balancer started from your own script instead of the command line.
// `import { startBalancer } from 'sticky-session-ts'` in an installed project.
const { startBalancer } = require('../../dist/src/index.js');

const portFlag = process.argv.indexOf('--port');
const port = portFlag === -1 ? 8080 : Number(process.argv[portFlag + 1]);

async function main() {
  const balancer = await startBalancer({
    listen: { host: '0.0.0.0', port },
    workers: { count: 2, app: require.resolve('../express-session/app.js') },
    admin: false,
  });
  const { address } = balancer.address();
  balancer.log.info({ workers: balancer.workers().map((worker) => worker.pid) }, `serving on ${address}:${balancer.address().port}`);
  // Scale and reload from your own code; here, from signals, like the command line.
  process.on('SIGTTIN', () => void balancer.scale(balancer.workers().length + 1));
  process.on('SIGHUP', () => void balancer.reload());
  process.on('SIGTERM', () => void balancer.close().then(() => process.exit(0)));
}

main().catch((error) => {
  console.error(error.message);
  process.exit(error.code === 'ERR_CONFIG' ? 2 : 1);
});
