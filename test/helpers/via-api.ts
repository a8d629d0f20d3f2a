// Imported first by a test file that runs integration tests through the
// programmatic API: the harness reads this when it loads (test/helpers/balancer.ts).
process.env.STICKY_TEST_ENTRY = 'api';
