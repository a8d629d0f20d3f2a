import t from 'tap';
import { clusterScenarios } from '../helpers/cluster-scenarios.js';

// A static member list: a dead node stays in it, and the survivors skip it from its first refused forward.
void clusterScenarios(t, {
  name: 'static',
  members: (ids) => ids,
  leaves: false,
  leaveBoundMs: 10_000,
});
