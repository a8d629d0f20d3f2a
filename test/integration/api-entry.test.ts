// The core and signal integration tests again, with every balancer started
// through startBalancer() (test/fixtures/api-master.js) instead of the command.
import '../helpers/via-api.js';
import { VIA_API } from '../helpers/balancer.js';
import t from 'tap';
import './core.test.js';
import './signals.test.js';

t.equal(VIA_API, true, 'the harness starts balancers through the API');
